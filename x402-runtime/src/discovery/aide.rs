//! aide's side of the priced OpenAPI document (feature `aide`, aide 0.16 on schemars 1).
//!
//! aide documents a handler from the `OperationInput`/`OperationOutput` of a function's
//! arguments; a `#[paid]` handler is a unit struct, so it is mounted with
//! [`ApiRouterExt::paid_route`], which documents it from the shapes of its types (the same
//! `schemars` schemas aide would read). The finished document (`finish_api`) goes to
//! [`Discovery::builder`](crate::discovery::Discovery::builder) like any other:
//!
//! ```no_run
//! use aide::axum::ApiRouter;
//! use aide::openapi::{Info, OpenApi};
//! use axum::{Extension, Json, extract::Query};
//! use http::Method;
//! use x402_runtime::X402;
//! use x402_runtime::discovery::Discovery;
//! use x402_runtime::discovery::aide::ApiRouterExt as _;
//!
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! struct City {
//!     city: String,
//! }
//!
//! #[derive(serde::Serialize, schemars::JsonSchema)]
//! struct Weather {
//!     celsius: f64,
//! }
//!
//! /// Current weather for a city.
//! #[x402_runtime::paid(price = "0.001", currency = "USDC")]
//! async fn weather(Query(q): Query<City>) -> Json<Weather> {
//!     Json(Weather { celsius: 21.5 })
//! }
//!
//! fn app(x402: X402) -> Result<axum::Router, Box<dyn std::error::Error>> {
//!     let mut api = OpenApi {
//!         info: Info { title: "Weather".into(), version: "1.0.0".into(), ..Info::default() },
//!         ..OpenApi::default()
//!     };
//!     let router = ApiRouter::new()
//!         .paid_route(Method::GET, "/weather", weather)
//!         .finish_api(&mut api);
//!     let discovery = Discovery::builder(&x402, &api).scope(module_path!()).build(&router)?;
//!     Ok(router.merge(discovery.router()).layer(x402.layer()))
//! }
//! ```

use ::aide::axum::ApiRouter;
use ::aide::axum::routing::ApiMethodDocs;
use axum::handler::Handler;
use axum::routing::{MethodFilter, on};
use http::Method;

use crate::discovery::document::{METHODS, describe};
use crate::route::mount::PaidHandler;
use crate::route::shapes::{self, openapi_path};

/// Mounting a `#[paid]` handler on aide's [`ApiRouter`], documented.
pub trait ApiRouterExt<S>: Sized {
    /// Mounts `handler` for `method` at `path` and adds its operation to the router's document
    /// (operation id, summary from the doc comment, path and query parameters, request body and
    /// the 200 response from the shapes of its types). [`Discovery`](crate::discovery::Discovery)
    /// then prices it.
    ///
    /// # Panics
    ///
    /// If axum cannot route `method` (it routes the eight standard methods besides CONNECT) or
    /// rejects `path`, as `Router::route` does.
    fn paid_route<H, T>(self, method: Method, path: &str, handler: H) -> Self
    where
        H: Handler<T, S> + PaidHandler,
        T: 'static;
}

impl<S> ApiRouterExt<S> for ApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    fn paid_route<H, T>(self, method: Method, path: &str, handler: H) -> Self
    where
        H: Handler<T, S> + PaidHandler,
        T: 'static,
    {
        let route = handler.paid_route();
        let (Ok(filter), Some((key, _))) = (
            MethodFilter::try_from(method.clone()),
            METHODS.iter().find(|(_, m)| *m == method),
        ) else {
            panic!(
                "x402: axum cannot route the method {method} of {}",
                describe(route)
            );
        };
        let router = self.route(path, on(filter, handler));
        let documented = openapi_path(path);
        let operation = shapes::operation(route, &method, &documented);
        match serde_json::from_value(operation) {
            Ok(operation) => router.api_route_docs(&documented, ApiMethodDocs::new(key, operation)),
            Err(e) => {
                // Reported again by the startup check (the operation is missing).
                tracing::warn!(
                    "x402: the operation of {} is not aide's shape: {e}",
                    describe(route)
                );
                router
            }
        }
    }
}
