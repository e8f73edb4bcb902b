//! What a quote function is made of: [`Quote`], the price it returns for one request, and the
//! glue that runs it with the handler's extractors.
//!
//! A quote function is written like a small axum handler: its arguments are extractors
//! (`Query`, `Path`, `State`, headers and, last, one that reads the body such as `Json<T>`), and it
//! returns a [`Quote`], or `Result<Quote, E>` where `E` is the rejection sent instead. The body is
//! read once, bounded, and handed again to the handler.

use std::future::Future;

use alloy_primitives::Address;
use axum::body::{Body, Bytes};
use axum::response::{IntoResponse, Response};
use http::request::Parts;

use crate::base::BoxFuture;
use crate::route::handler::Extractors;

/// The price a quote function gives one request: an amount in the route's currency and,
/// optionally, the address this request's payment goes to (a marketplace paying each seller).
///
/// The amount must lie within the route's published `min` and `max`; one outside them, or one
/// with more decimals than the token has, is a bug in the quote function, answered `500`
/// before anything is verified or charged. A quote must be a function of the request alone: the
/// paid request is quoted again and its payment must match that second quote.
///
/// ```
/// use x402_runtime::Quote;
///
/// let by_text = Quote::new("0.002");
/// let by_units = Quote::atomic(2_000); // 0.002 in a 6-decimal token
/// assert_eq!(by_text.amount(), "0.002");
/// assert_eq!(by_units.amount(), "2000 atomic units");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quote {
    amount: Amount,
    pay_to: Option<Address>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Amount {
    /// Written in human units, e.g. `"0.002"`.
    Human(String),
    /// In the token's atomic units.
    Atomic(u128),
}

impl Quote {
    /// A price written as in `#[paid(price = "…")]`, in the route's currency.
    pub fn new(amount: impl Into<String>) -> Quote {
        Quote {
            amount: Amount::Human(amount.into()),
            pay_to: None,
        }
    }

    /// A price in the token's atomic units (`1000` is 0.001 USDC).
    pub fn atomic(units: u128) -> Quote {
        Quote {
            amount: Amount::Atomic(units),
            pay_to: None,
        }
    }

    /// Pays this request to `address` instead of the route's recipient.
    #[must_use]
    pub fn pay_to(mut self, address: Address) -> Quote {
        self.pay_to = Some(address);
        self
    }

    /// The amount as given, for logs.
    pub fn amount(&self) -> String {
        match &self.amount {
            Amount::Human(text) => text.clone(),
            Amount::Atomic(units) => format!("{units} atomic units"),
        }
    }

    pub(crate) fn parts(&self) -> (&Amount, Option<Address>) {
        (&self.amount, self.pay_to)
    }
}

/// What a quote function may return: a [`Quote`], or `Result<Quote, E>` whose error is the
/// answer instead (a `400` for a request that cannot be priced, say).
pub trait IntoQuote {
    /// The quote, or the response that refuses to give one.
    // The refusal is the request's answer, built once: boxing it would only add an allocation.
    #[allow(clippy::result_large_err)]
    fn into_quote(self) -> Result<Quote, Response>;
}

impl IntoQuote for Quote {
    fn into_quote(self) -> Result<Quote, Response> {
        Ok(self)
    }
}

impl<E: IntoResponse> IntoQuote for Result<Quote, E> {
    fn into_quote(self) -> Result<Quote, Response> {
        self.map_err(IntoResponse::into_response)
    }
}

/// A quote function for the router's state `S`: implemented by every `async fn` marked
/// `#[x402_runtime::quote]` (which turns it into a unit struct of the same name, as `#[paid]`
/// does a handler). `M` says how its last argument is extracted.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a quote function for the state `{S}`",
    note = "mark the quote function with `#[x402_runtime::quote]`: an `async fn` whose arguments \
            are axum extractors for this state (the one that reads the body last) and which \
            returns `Quote` or `Result<Quote, E>` with `E: IntoResponse`"
)]
pub trait Quoter<M, S>: Copy + Send + Sync + 'static {
    /// Extracts the arguments from the request (its body already read) and runs the function.
    fn quote<'a>(
        self,
        parts: Parts,
        body: Bytes,
        state: &'a S,
    ) -> BoxFuture<'a, Result<Quote, Response>>;
}

/// The future of a quote function, its output turned into a quote.
#[doc(hidden)]
pub type QuoteFuture = BoxFuture<'static, Result<Quote, Response>>;

/// Boxes a quote function's future.
#[doc(hidden)]
pub fn quote_future<F, R>(quote: F) -> QuoteFuture
where
    F: Future<Output = R> + Send + 'static,
    R: IntoQuote,
{
    Box::pin(async move { quote.await.into_quote() })
}

/// Runs a quote function: its arguments `T` extracted from the request (the body given again)
/// with the state, then `call`. A rejection of an extractor is the answer, as in axum.
#[doc(hidden)]
pub fn run_quote<'a, S, M, T>(
    parts: Parts,
    body: Bytes,
    state: &'a S,
    call: fn(T) -> QuoteFuture,
) -> BoxFuture<'a, Result<Quote, Response>>
where
    S: Send + Sync,
    T: Extractors<S, M> + 'a,
    M: 'a,
{
    Box::pin(async move {
        let args = T::extract(parts, Body::from(body), state).await?;
        call(args).await
    })
}
