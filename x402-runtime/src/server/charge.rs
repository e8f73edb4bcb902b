//! [`Charge`]: what an `upto` route's handler says the request used.

use axum::response::{IntoResponseParts, ResponseParts};

use crate::price::{Currency, Price};

/// What a request to an `#[paid(upto = …)]` route used, in the route's currency: the paywall
/// settles exactly this, at most the maximum the payer authorized.
///
/// Return it with the response (it is a response part): `(Charge::new("0.0123"), Json(answer))`.
/// An `upto` handler that answers 2xx without one, or charges above the maximum, is a bug of
/// the server: the answer is `500` (`x402_charge_missing`, `x402_charge_invalid`), nothing is
/// settled and the response is withheld. A charge of zero settles nothing (the permit stays
/// unused on chain) and the receipt says `amount: "0"`. An answer that is not 2xx is never
/// charged, whatever it carries.
///
/// ```
/// use axum::Json;
/// use x402_runtime::{Charge, paid};
///
/// /// Summarises a text, billed by the tokens it used.
/// #[paid(upto = "0.50", currency = "USDC")]
/// async fn summarise(text: String) -> (Charge, Json<String>) {
///     let words = text.split_whitespace().count() as u128;
///     // 10 atomic units (0.00001 USDC) per word, at most the 0.50 authorized.
///     (Charge::atomic((words * 10).min(500_000)), Json(format!("{words} words")))
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Charge(Amount);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Amount {
    Human(String),
    Atomic(u128),
}

impl Charge {
    /// An amount written like a price (`"0.0123"`), in the route's currency; `"0"` charges
    /// nothing.
    pub fn new(amount: impl Into<String>) -> Charge {
        Charge(Amount::Human(amount.into()))
    }

    /// An amount in the token's atomic units (`1000` is 0.001 USDC).
    pub fn atomic(units: u128) -> Charge {
        Charge(Amount::Atomic(units))
    }

    /// Nothing: the request used nothing billable.
    pub fn nothing() -> Charge {
        Charge(Amount::Atomic(0))
    }

    /// The amount in `currency`'s atomic units; an error says why it is not a price there.
    pub(crate) fn atomic_in(&self, currency: Currency) -> Result<u128, String> {
        match &self.0 {
            Amount::Atomic(units) => Ok(*units),
            Amount::Human(text) if is_zero(text) => Ok(0),
            Amount::Human(text) => Price::parse(text, currency).map(|price| price.atomic),
        }
    }
}

/// `0`, `0.0`, `0.000`: zero written as a price would be.
fn is_zero(text: &str) -> bool {
    let (integer, fraction) = text.split_once('.').unwrap_or((text, ""));
    integer == "0" && fraction.bytes().all(|b| b == b'0')
}

impl IntoResponseParts for Charge {
    type Error = std::convert::Infallible;

    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Self::Error> {
        res.extensions_mut().insert(self);
        Ok(res)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_in_the_routes_currency() {
        let usdc = Currency::Usdc;
        assert_eq!(Charge::new("0.0123").atomic_in(usdc), Ok(12_300));
        assert_eq!(Charge::new("0").atomic_in(usdc), Ok(0));
        assert_eq!(Charge::new("0.000").atomic_in(usdc), Ok(0));
        assert_eq!(Charge::atomic(7).atomic_in(usdc), Ok(7));
        assert_eq!(Charge::nothing().atomic_in(usdc), Ok(0));
        assert!(Charge::new("0.0000001").atomic_in(usdc).is_err());
        assert!(Charge::new("-1").atomic_in(usdc).is_err());
        assert!(Charge::new("00").atomic_in(usdc).is_err());
    }
}
