//! Which paid handler a router runs for a method and path, found without running the handler.
//!
//! The startup check sends one request per paid route through the finished router. The request
//! carries a [`MountProbe`] extension, which only code in this process can set (extensions never
//! come from the network); the paywall of the handler it reaches answers with the handler's
//! [`PaidRoute`] instead of a challenge, before any extractor of the handler runs. A route that
//! is not mounted, or mounted with another handler, gives no answer.

use crate::route::{PaidEndpoint, PaidRoute};

#[cfg(feature = "schemars")]
pub(crate) use probe::{MountProbe, Probe, answer, mounted_route};

/// The probe request, the paywall's answer to it, and what the startup check reads from it.
#[cfg(feature = "schemars")]
mod probe {
    use axum::response::{IntoResponse, Response};
    use axum::{Router, body::Body};
    use futures_util::FutureExt as _;
    use http::{Method, Request, StatusCode};
    use tower::ServiceExt as _;

    use super::fill_parameters;
    use crate::route::PaidRoute;

    /// Marks a request sent by [`mounted_route`].
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct MountProbe;

    /// The paywall's answer to a [`MountProbe`]: the route it guards.
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct MountedRoute(pub(crate) &'static PaidRoute);

    /// The answer the paywall gives to a probe.
    pub(crate) fn answer(route: &'static PaidRoute) -> Response {
        let mut response = StatusCode::NO_CONTENT.into_response();
        response.extensions_mut().insert(MountedRoute(route));
        response
    }

    /// What a probe of `method path` found.
    #[derive(Debug)]
    pub(crate) enum Probe {
        /// The paywall of this route answered.
        Paid(&'static PaidRoute),
        /// Something else answered (no handler, a free handler, or a layer that stopped the
        /// request).
        Other(StatusCode),
        /// The router did not answer without waiting (a layer that sleeps or does I/O).
        Pending,
    }

    /// Sends a probe for `method path` through `router`. Path parameters (`{id}`, `{*rest}`) are
    /// filled with a placeholder. The router must answer without waiting: a probe never reaches
    /// the handler, so only layers that wait on their own can delay it.
    pub(crate) fn mounted_route(router: &Router, method: &Method, path: &str) -> Probe {
        let uri = fill_parameters(path);
        let Ok(mut request) = Request::builder()
            .method(method.clone())
            .uri(uri.as_str())
            .body(Body::empty())
        else {
            return Probe::Other(StatusCode::BAD_REQUEST);
        };
        request.extensions_mut().insert(MountProbe);
        match router.clone().oneshot(request).now_or_never() {
            Some(Ok(response)) => match response.extensions().get::<MountedRoute>() {
                Some(found) => Probe::Paid(found.0),
                None => Probe::Other(response.status()),
            },
            Some(Err(never)) => match never {},
            None => Probe::Pending,
        }
    }
}

/// `/users/{id}/files/{*rest}` → `/users/x402-probe/files/x402-probe`.
#[cfg(any(feature = "schemars", test))]
fn fill_parameters(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        match rest[open..].find('}') {
            Some(close) => {
                out.push_str("x402-probe");
                rest = &rest[open + close + 1..];
            }
            None => {
                rest = &rest[open..];
                break;
            }
        }
    }
    out.push_str(rest);
    if out.is_empty() { "/".to_owned() } else { out }
}

/// A `#[paid]` handler: names the [`PaidRoute`] it registered, so code that mounts a handler
/// can learn its price (see `OpenApiRouterExt::paid_route` under the `openapi` feature).
///
/// Implemented for every handler `#[paid]` produced.
pub trait PaidHandler {
    /// The route record the handler registered.
    fn paid_route(&self) -> &'static PaidRoute;
}

impl<H: PaidEndpoint> PaidHandler for H {
    fn paid_route(&self) -> &'static PaidRoute {
        H::ROUTE
    }
}

#[cfg(test)]
mod tests {
    use super::fill_parameters;

    #[test]
    fn parameters_are_filled() {
        assert_eq!(fill_parameters("/weather"), "/weather");
        assert_eq!(
            fill_parameters("/users/{id}/files/{*rest}"),
            "/users/x402-probe/files/x402-probe"
        );
        assert_eq!(fill_parameters(""), "/");
        assert_eq!(fill_parameters("/broken/{id"), "/broken/{id");
    }
}
