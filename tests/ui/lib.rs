//! Nothing to link: this package exists for its `ui` test (`ui.rs`), which compiles the cases in
//! `fail/` and `pass/` against `#[paid]` and compares the diagnostics with the blessed `.stderr`.
