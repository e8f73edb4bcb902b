//! The README's Rust snippets, compiled as doc tests of this crate (`cargo test -p x402-tests
//! --doc`), so every snippet a user copies has its complete imports and builds against the
//! current API. This crate's dev-dependencies give them the features they use (`client`,
//! `openapi`, `redis`).

#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct Readme;
