//! utoipa's side of the priced OpenAPI document (feature `openapi`, utoipa 6 and utoipa-axum 0.3).
//!
//! Most users go through [`Discovery`], which prices the document utoipa-axum's
//! `split_for_parts` returns and serves it. [`X402OpenApi::modify`] is the same pricing pass
//! ([`Pricer`]) on utoipa's own types, for apps that serve the document themselves.
//!
//! A paid handler without `#[utoipa::path]` is still documented: from the method and path given
//! to `#[paid]`, or from where [`OpenApiRouterExt::paid_route`] mounted it, with the shapes of
//! its types when they implement `schemars::JsonSchema`.

use axum::handler::Handler;
use axum::routing::{MethodFilter, on};
use http::Method;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use crate::discovery::Discovery;
pub use crate::discovery::document::{CheckError, PAYMENT_INFO, PAYMENT_REQUIRED_SCHEMA};
use crate::discovery::document::{PaidOperation, Pricer, describe, insert_operation};
use crate::route::PaidRoute;
use crate::route::mount::PaidHandler;
use crate::server::engine::X402;

/// The pricing pass on a utoipa document.
#[derive(Clone, Debug)]
#[must_use]
pub struct X402OpenApi {
    pricer: Pricer,
}

impl X402OpenApi {
    /// Prices the operations of `x402`'s registered handlers.
    pub fn new(x402: &X402) -> Self {
        X402OpenApi {
            pricer: Pricer::new(x402),
        }
    }

    /// As [`Pricer::scope`].
    pub fn scope(self, module_path: impl Into<String>) -> Self {
        X402OpenApi {
            pricer: self.pricer.scope(module_path),
        }
    }

    /// As [`Pricer::free_operations_security`].
    pub fn free_operations_security(self, on: bool) -> Self {
        X402OpenApi {
            pricer: self.pricer.free_operations_security(on),
        }
    }

    /// The paid handlers in scope, sorted.
    pub fn routes(&self) -> Vec<&'static PaidRoute> {
        self.pricer.routes()
    }

    /// Prices `api` in place and lists its paid operations, as [`Pricer::modify`] does.
    pub fn modify(&self, api: &mut OpenApi) -> Result<Vec<PaidOperation>, CheckError> {
        let mut problems = Vec::new();
        let paid = through_json(api, &mut problems, |doc, problems| {
            let (paid, found) = self.pricer.apply(doc);
            problems.extend(found);
            paid
        });
        if problems.is_empty() {
            Ok(paid.unwrap_or_default())
        } else {
            Err(CheckError::new(problems))
        }
    }
}

/// Runs `edit` on `api` as JSON and reads the result back into `api`.
fn through_json<T>(
    api: &mut OpenApi,
    problems: &mut Vec<String>,
    edit: impl FnOnce(&mut serde_json::Value, &mut Vec<String>) -> T,
) -> Option<T> {
    let mut doc = match serde_json::to_value(&*api) {
        Ok(doc) => doc,
        Err(e) => {
            problems.push(format!("the OpenAPI document does not serialize: {e}"));
            return None;
        }
    };
    let out = edit(&mut doc, problems);
    match serde_json::from_value::<OpenApi>(doc) {
        Ok(edited) => *api = edited,
        Err(e) => problems.push(format!("the priced document is not utoipa's shape: {e}")),
    }
    Some(out)
}

/// Mounting a `#[paid]` handler that has no `#[utoipa::path]` on an [`OpenApiRouter`].
pub trait OpenApiRouterExt<S>: Sized {
    /// Mounts `handler` for `method` at `path` and adds its operation to the router's document
    /// (operation id, summary from the doc comment, path and query parameters, request body and
    /// the 200 response from the shapes of its types). The pricing pass then prices it like any
    /// other.
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

impl<S> OpenApiRouterExt<S> for OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    fn paid_route<H, T>(self, method: Method, path: &str, handler: H) -> Self
    where
        H: Handler<T, S> + PaidHandler,
        T: 'static,
    {
        let route = handler.paid_route();
        let Ok(filter) = MethodFilter::try_from(method.clone()) else {
            panic!(
                "x402: axum cannot route the method {method} of {}",
                describe(route)
            );
        };
        let mut router = self.route(path, on(filter, handler));
        let mut problems = Vec::new();
        through_json(router.get_openapi_mut(), &mut problems, |doc, problems| {
            if let Err(problem) = insert_operation(doc, route, &method, path) {
                problems.push(problem);
            }
        });
        for problem in problems {
            // Reported again by the startup check; logged here for where it happened.
            tracing::warn!("x402: {problem}");
        }
        router
    }
}
