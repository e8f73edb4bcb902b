//! What a `#[paid]` handler is made of, as the expansion uses it.
//!
//! `#[paid] async fn weather(Query(q): Query<City>) -> ..` becomes a unit struct `weather` that
//! implements axum's `Handler`. Its `call` is one line: [`serve`](crate::server::serve::serve) with
//! the route's record and a plain `fn` that calls the user's function with the extracted
//! arguments. Everything generic lives in this crate, so a paid handler compiles to little more
//! than the user's own future (axum's impl for functions would compile its whole request future
//! again for every handler):
//!
//! - the admission and settlement are not generic at all;
//! - extraction ([`Extractors`]) is generic in the tuple of argument types and the state only, so
//!   handlers with the same arguments share one copy;
//! - the user's future is boxed by [`handler_future`], generic in its type and output.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;

/// The `T` of a `#[paid]` handler's `Handler<T, S>` impl: the handler `H`, and `M`, how its last
/// argument is extracted (from the request parts or from the whole request), as in axum.
#[doc(hidden)]
pub struct Via<H, M>(PhantomData<fn() -> (H, M)>);

/// The future of a paid handler: its response, once admitted, run and settled.
#[doc(hidden)]
pub type HandlerFuture<'a> = Pin<Box<dyn Future<Output = Response> + Send + 'a>>;

/// Boxes a handler's future and turns its output into a response: generic in the future's type
/// for the box only, and in the output type for the conversion.
#[doc(hidden)]
pub fn handler_future<'a, F, R>(handler: F) -> HandlerFuture<'a>
where
    F: Future<Output = R> + Send + 'a,
    R: IntoResponse + 'a,
{
    Box::pin(Respond {
        handler: Box::pin(handler),
    })
}

/// A handler's future whose output becomes a response.
struct Respond<'a, R> {
    handler: Pin<Box<dyn Future<Output = R> + Send + 'a>>,
}

impl<R: IntoResponse> Future for Respond<'_, R> {
    type Output = Response;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response> {
        self.handler
            .as_mut()
            .poll(cx)
            .map(IntoResponse::into_response)
    }
}

/// The arguments of a paid handler, as a tuple, extracted in order: every one but the last from
/// the request parts, the last from the whole request (so it may read the body), each with the
/// router's state `S`. A rejection becomes the response, as in axum.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "the arguments `{Self}` of this `#[paid]` handler are not all axum extractors for \
               the state `{S}`",
    note = "every argument but the last must implement `FromRequestParts<{S}>`, the last \
            `FromRequest<{S}>`; the body extractor (`Json`, `String`, `Bytes`, `Request`) goes last"
)]
pub trait Extractors<S, M>: Sized + Send {
    /// Runs the extractors in order.
    fn extract(
        parts: Parts,
        body: Body,
        state: &S,
    ) -> impl Future<Output = Result<Self, Response>> + Send;
}

impl<S: Send + Sync> Extractors<S, ()> for () {
    async fn extract(_parts: Parts, _body: Body, _state: &S) -> Result<Self, Response> {
        Ok(())
    }
}

macro_rules! extractors {
    ($($part:ident),* ; $last:ident) => {
        #[allow(non_snake_case)]
        impl<S, M, $($part,)* $last> Extractors<S, M> for ($($part,)* $last,)
        where
            S: Send + Sync,
            $($part: FromRequestParts<S> + Send,)*
            $last: FromRequest<S, M> + Send,
        {
            async fn extract(
                #[allow(unused_mut)] mut parts: Parts,
                body: Body,
                state: &S,
            ) -> Result<Self, Response> {
                $(
                    let $part = match $part::from_request_parts(&mut parts, state).await {
                        Ok(value) => value,
                        Err(rejection) => return Err(rejection.into_response()),
                    };
                )*
                let request = http::Request::from_parts(parts, body);
                let $last = match $last::from_request(request, state).await {
                    Ok(value) => value,
                    Err(rejection) => return Err(rejection.into_response()),
                };
                Ok(($($part,)* $last,))
            }
        }
    };
}

extractors!(; T1);
extractors!(T1; T2);
extractors!(T1, T2; T3);
extractors!(T1, T2, T3; T4);
extractors!(T1, T2, T3, T4; T5);
extractors!(T1, T2, T3, T4, T5; T6);
extractors!(T1, T2, T3, T4, T5, T6; T7);
extractors!(T1, T2, T3, T4, T5, T6, T7; T8);
extractors!(T1, T2, T3, T4, T5, T6, T7, T8; T9);
extractors!(T1, T2, T3, T4, T5, T6, T7, T8, T9; T10);
extractors!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10; T11);
extractors!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11; T12);
extractors!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12; T13);
extractors!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13; T14);
extractors!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13, T14; T15);
extractors!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13, T14, T15; T16);
