//! The compile-time registry of paid handlers.
//!
//! Every `#[paid]` handler submits one [`PaidRoute`] record through `inventory` when it is compiled.
//! The record is a constant: the price was parsed and converted to atomic units by the macro, so
//! nothing about it is re-parsed at run time. [`routes`] lists every record linked into the binary.

use crate::price::{Currency, Price, Pricing};

pub(crate) mod handler;
pub(crate) mod mount;
pub(crate) mod quote;
pub(crate) mod shapes;

use shapes::Shapes;

/// When the payment is settled relative to the handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SettleTiming {
    /// Run the handler first and settle only if it answered 2xx (the default): a failing
    /// handler never costs the caller anything.
    #[default]
    AfterSuccess,
    /// Settle before the handler runs (`settle = "before"`): for handlers with side effects
    /// that cannot be undone. If settlement fails the handler never runs.
    Before,
}

/// The record `#[paid]` registers for one handler.
///
/// Fields are public so the macro can build the record in a constant; read them through the
/// accessor methods, which stay stable when fields are added.
#[derive(Debug)]
pub struct PaidRoute {
    #[doc(hidden)]
    pub handler: &'static str,
    #[doc(hidden)]
    pub module_path: &'static str,
    #[doc(hidden)]
    pub operation_id: &'static str,
    #[doc(hidden)]
    pub pricing: Pricing,
    #[doc(hidden)]
    pub currencies: &'static [Currency],
    #[doc(hidden)]
    pub networks: &'static [&'static str],
    #[doc(hidden)]
    pub pay_to: Option<&'static str>,
    #[doc(hidden)]
    pub description: Option<&'static str>,
    #[doc(hidden)]
    pub max_timeout_seconds: Option<u32>,
    #[doc(hidden)]
    pub settle: SettleTiming,
    #[doc(hidden)]
    pub method: Option<&'static str>,
    #[doc(hidden)]
    pub path: Option<&'static str>,
    #[doc(hidden)]
    pub shapes: fn() -> Shapes,
    #[doc(hidden)]
    pub pay_page: bool,
    #[doc(hidden)]
    pub file: &'static str,
    #[doc(hidden)]
    pub line: u32,
}

impl PaidRoute {
    /// The handler function's name.
    pub fn handler(&self) -> &'static str {
        self.handler
    }

    /// The module the handler is defined in (`module_path!()` at the handler).
    pub fn module_path(&self) -> &'static str {
        self.module_path
    }

    /// The OpenAPI operation id: `operation_id = "…"` in the attribute, else the one in
    /// `#[utoipa::path]`, else the function name.
    pub fn operation_id(&self) -> &'static str {
        self.operation_id
    }

    /// How the route is priced.
    pub fn pricing(&self) -> &Pricing {
        &self.pricing
    }

    /// The fixed price, if the route has one.
    pub fn price(&self) -> Option<&Price> {
        self.pricing.fixed()
    }

    /// The currencies the route can be paid in, preferred first (`currency = ["USDC", "EURC"]`);
    /// the same amount is asked in each. The first is the pricing's.
    pub fn currencies(&self) -> &'static [Currency] {
        self.currencies
    }

    /// The networks the route is offered on (`networks = [...]`, CAIP-2, preferred first);
    /// empty when it is offered on the configuration's networks.
    pub fn networks(&self) -> &'static [&'static str] {
        self.networks
    }

    /// The recipient of this route's payments (`pay_to = "0x…"`, EIP-55); `None` for the
    /// configuration's.
    pub fn pay_to(&self) -> Option<&'static str> {
        self.pay_to
    }

    /// `description = "…"` from the attribute, else the first paragraph of the doc comment.
    pub fn description(&self) -> Option<&'static str> {
        self.description
    }

    /// `max_timeout_seconds` from the attribute; `None` means the configuration's default.
    pub fn max_timeout_seconds(&self) -> Option<u32> {
        self.max_timeout_seconds
    }

    /// When settlement happens.
    pub fn settle_timing(&self) -> SettleTiming {
        self.settle
    }

    /// The HTTP method, upper case, when known (from the attribute or `#[utoipa::path]`).
    pub fn method(&self) -> Option<&'static str> {
        self.method
    }

    /// The route path (axum syntax), when known.
    pub fn path(&self) -> Option<&'static str> {
        self.path
    }

    /// Whether a browser gets the pay page for this route (`#[paid(pay_page = false)]` turns
    /// it off) when the configuration has it on.
    pub fn pay_page(&self) -> bool {
        self.pay_page
    }

    /// The JSON Schemas of what the handler extracts and returns, from its types (feature
    /// `schemars`; empty without it or for types that do not implement `JsonSchema`). Computed
    /// on each call.
    pub fn shapes(&self) -> Shapes {
        (self.shapes)()
    }

    /// Source file of the handler.
    pub fn file(&self) -> &'static str {
        self.file
    }

    /// Source line of the `#[paid]` attribute.
    pub fn line(&self) -> u32 {
        self.line
    }

    /// A stable identity for maps keyed by route: the address of the registered record.
    pub(crate) fn id(&'static self) -> usize {
        std::ptr::from_ref(self) as usize
    }
}

/// The value `#[paid]` submits to `inventory`: a reference to the handler's static record.
#[doc(hidden)]
pub struct RouteEntry(pub &'static PaidRoute);

inventory::collect!(RouteEntry);

/// Every `#[paid]` handler linked into this binary, sorted by path, method and operation id
/// (records without a path sort by module and handler name).
///
/// A handler in a library crate is only linked if the binary uses that crate; see the crate
/// documentation.
pub fn routes() -> Vec<&'static PaidRoute> {
    let mut all: Vec<&'static PaidRoute> = inventory::iter::<RouteEntry>
        .into_iter()
        .map(|entry| entry.0)
        .collect();
    all.sort_by(|a, b| {
        (a.path, a.method, a.module_path, a.handler, a.operation_id).cmp(&(
            b.path,
            b.method,
            b.module_path,
            b.handler,
            b.operation_id,
        ))
    });
    all
}

/// Implemented by every handler `#[paid]` generates (the unit struct that replaces the function).
#[doc(hidden)]
pub trait PaidEndpoint: Send + Sync + 'static {
    /// The handler's registered record.
    const ROUTE: &'static PaidRoute;
}
