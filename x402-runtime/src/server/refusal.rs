//! Every refusal the paywall answers with, other than a 402 challenge: one variant each, owning
//! its status, its stable code ([`codes`]) and its message. Rendered as
//! `{"error": code, "message": …, "transaction"?}` with `Cache-Control: no-store`; a refusal that
//! carries a receipt adds it (`PAYMENT-RESPONSE` / `X-PAYMENT-RESPONSE`), and every 503 adds
//! `Retry-After`.

use std::borrow::Cow;

use axum::response::{IntoResponse, Response};
use http::StatusCode;

use super::answer::{attach_receipt, error_body, retry_later, settle_receipt};
use crate::proto::{SettleResponse, X402Version, codes};

/// Why the paywall refused a request (see the [module documentation](self)).
#[derive(Clone, Debug)]
pub(crate) enum Refusal {
    /// `Payment` was extracted outside a `#[paid]` handler.
    NotPaidHandler,
    /// The admission's answer was taken twice (a bug).
    AnsweredTwice,
    /// The route is paid but the router has no x402 configuration.
    NotConfigured,
    /// The configuration offers no token in the route's currency.
    NoOffer(String),
    /// The challenge could not be encoded.
    ChallengeUnencodable,
    /// The payment header is not a decodable x402 payment.
    Malformed(String),
    /// The payment header exceeds the size cap.
    HeaderTooLarge,
    /// The facilitator's `/supported` has not answered yet.
    FacilitatorUnavailable,
    /// `/verify` did not answer in time.
    VerifyTimeout,
    /// `/verify` answered something that cannot be trusted.
    VerifyFault,
    /// The payment's `payment-identifier` id is malformed (why).
    InvalidIdentifier(&'static str),
    /// The route requires a `payment-identifier` id and the payment has none.
    IdentifierRequired,
    /// The id is bound to another payment.
    IdentifierConflict,
    /// This process holds too many ids.
    IdentifierCacheFull,
    /// The replay store cannot be reached.
    StoreUnavailable,
    /// The server is shutting down: no new payment is admitted.
    ShuttingDown,
    /// Another request is verifying, serving or settling this payment.
    InProgress,
    /// The payment settled in this transaction (empty when not known).
    AlreadySettled(String),
    /// The handler panicked; nothing was charged.
    HandlerPanicked,
    /// The handler's body failed while buffered; nothing was charged.
    BodyFailed,
    /// The handler's body failed after the payment settled in this transaction.
    BodyFailedAfterSettling(String),
    /// `/settle` could not be reached; nothing was sent and the payment is released.
    SettleUnreachable,
    /// The settlement failed inside the server (it panicked).
    SettlementTaskFailed,
    /// The authorization expired while the handler ran, so it was not settled.
    ExpiredWhileServed(Receipted),
    /// `/settle` refused the payment with this reason; nothing was charged.
    SettlementRefused(String, Receipted),
    /// The settlement's outcome is not known yet.
    SettlementPending(Receipted),
    /// The route's quote function quoted outside the published bounds (what it quoted).
    QuoteOutOfBounds(String),
    /// The route's quote function gave an amount that is not a price in the route's currency.
    QuoteInvalid(String),
    /// The request body a quote needs is larger than the paywall reads.
    BodyTooLarge,
    /// The request body a quote needs could not be read.
    BodyUnreadable,
    /// An `upto` handler answered without a [`Charge`](crate::Charge).
    ChargeMissing,
    /// An `upto` handler's charge is above the authorized maximum or not a price (what it was).
    ChargeInvalid(String),
}

/// A receipt and the protocol version whose header carries it.
#[derive(Clone, Debug)]
pub(crate) struct Receipted {
    pub(crate) version: X402Version,
    pub(crate) receipt: SettleResponse,
}

impl Refusal {
    /// The answer while a payment's settlement outcome is unknown: 503 with `Retry-After` and a
    /// receipt (`errorReason: settlement_pending`, the transaction when known). Never a 402,
    /// which would invite a second signature.
    pub(crate) fn pending(
        version: X402Version,
        payer: crate::network::AccountId,
        wire_network: &str,
        transaction: &str,
    ) -> Refusal {
        let reason = Some(codes::SETTLEMENT_PENDING);
        Refusal::SettlementPending(Receipted {
            version,
            receipt: settle_receipt(payer, wire_network, false, transaction, reason),
        })
    }

    /// The HTTP status.
    pub(crate) fn status(&self) -> StatusCode {
        use Refusal::*;
        match self {
            Malformed(_) | InvalidIdentifier(_) | IdentifierRequired | BodyUnreadable => {
                StatusCode::BAD_REQUEST
            }
            BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            HeaderTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ExpiredWhileServed(_) | SettlementRefused(..) => StatusCode::PAYMENT_REQUIRED,
            IdentifierConflict | InProgress | AlreadySettled(_) => StatusCode::CONFLICT,
            VerifyFault | SettleUnreachable => StatusCode::BAD_GATEWAY,
            VerifyTimeout => StatusCode::GATEWAY_TIMEOUT,
            FacilitatorUnavailable
            | IdentifierCacheFull
            | StoreUnavailable
            | ShuttingDown
            | SettlementPending(_) => StatusCode::SERVICE_UNAVAILABLE,
            NotPaidHandler
            | AnsweredTwice
            | NotConfigured
            | NoOffer(_)
            | ChallengeUnencodable
            | HandlerPanicked
            | BodyFailed
            | BodyFailedAfterSettling(_)
            | SettlementTaskFailed
            | QuoteOutOfBounds(_)
            | QuoteInvalid(_)
            | ChargeMissing
            | ChargeInvalid(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable code (`error` in the body).
    pub(crate) fn code(&self) -> &str {
        use Refusal::*;
        match self {
            Malformed(_) | HeaderTooLarge => codes::INVALID_PAYLOAD,
            InvalidIdentifier(_) => codes::INVALID_PAYMENT_IDENTIFIER,
            IdentifierRequired => codes::PAYMENT_IDENTIFIER_REQUIRED,
            IdentifierConflict => codes::PAYMENT_IDENTIFIER_CONFLICT,
            IdentifierCacheFull => codes::PAYMENT_IDENTIFIER_CACHE_FULL,
            StoreUnavailable => codes::REPLAY_STORE_UNAVAILABLE,
            ShuttingDown => codes::SERVER_SHUTTING_DOWN,
            FacilitatorUnavailable => codes::FACILITATOR_UNAVAILABLE,
            VerifyTimeout => codes::FACILITATOR_TIMEOUT,
            VerifyFault => codes::UNEXPECTED_VERIFY_ERROR,
            SettleUnreachable => codes::UNEXPECTED_SETTLE_ERROR,
            InProgress => codes::PAYMENT_IN_PROGRESS,
            AlreadySettled(_) => codes::PAYMENT_ALREADY_SETTLED,
            ExpiredWhileServed(_) => codes::VALID_BEFORE,
            SettlementRefused(reason, _) => reason,
            SettlementPending(_) => codes::SETTLEMENT_PENDING,
            NotConfigured => codes::NOT_CONFIGURED,
            NoOffer(_) => codes::NO_OFFER,
            QuoteOutOfBounds(_) => codes::QUOTE_OUT_OF_BOUNDS,
            QuoteInvalid(_) => codes::QUOTE_INVALID,
            BodyTooLarge => codes::REQUEST_BODY_TOO_LARGE,
            BodyUnreadable => codes::INVALID_REQUEST_BODY,
            ChargeMissing => codes::CHARGE_MISSING,
            ChargeInvalid(_) => codes::CHARGE_INVALID,
            NotPaidHandler
            | AnsweredTwice
            | ChallengeUnencodable
            | HandlerPanicked
            | BodyFailed
            | BodyFailedAfterSettling(_)
            | SettlementTaskFailed => codes::INTERNAL_ERROR,
        }
    }

    /// The message for people (`message` in the body).
    pub(crate) fn message(&self) -> Cow<'_, str> {
        use Refusal::*;
        Cow::Borrowed(match self {
            Malformed(why) | NoOffer(why) => return Cow::Borrowed(why),
            QuoteOutOfBounds(_) | QuoteInvalid(_) | BodyTooLarge | BodyUnreadable => {
                return self.pricing_message();
            }
            ChargeInvalid(what) => {
                return Cow::Owned(format!(
                    "the server charged an amount it may not ({what}); nothing was charged and \
                     the response was withheld"
                ));
            }
            ChargeMissing => {
                "the server did not say what this request used; nothing was charged and the \
                 response was withheld"
            }
            InvalidIdentifier(why) => why,
            HeaderTooLarge => "the payment header exceeds 16 KiB",
            NotPaidHandler => "`Payment` can only be extracted in a handler annotated with #[paid]",
            AnsweredTwice => "the paywall's answer was asked for twice",
            NotConfigured => {
                "this route is paid but the server has no x402 configuration: build one with \
                 `let x402 = x402_runtime::X402::from_env()?;` and install it with \
                 `.layer(x402.layer())` on the Router"
            }
            ChallengeUnencodable => "cannot encode the challenge",
            FacilitatorUnavailable => {
                "the payment facilitator is not reachable yet; nothing was charged, resend the \
                 same payment header later"
            }
            VerifyTimeout => {
                "the facilitator did not verify the payment in time; nothing was charged, retry \
                 with the same payment header"
            }
            VerifyFault => {
                "the facilitator could not verify the payment; nothing was charged, retry with the \
                 same payment header"
            }
            IdentifierRequired => {
                "this route requires a payment identifier: echo extensions[\"payment-identifier\"] \
                 from the 402 with info.id set (16 to 128 characters of A-Z, a-z, 0-9, `_` and `-`)"
            }
            IdentifierConflict => {
                "this payment identifier belongs to another payment for this resource; nothing was \
                 charged. Resend that payment's header to get its answer, or pay with a new \
                 identifier"
            }
            IdentifierCacheFull => {
                "the server holds too many payment identifiers right now; nothing was charged, \
                 resend the same payment header later"
            }
            StoreUnavailable => {
                "the server cannot check this payment for reuse right now; nothing was charged, \
                 resend the same payment header later"
            }
            ShuttingDown => {
                "the server is shutting down; nothing was verified or charged, resend the same \
                 payment header later or to another instance"
            }
            InProgress => {
                "this payment is being verified, served or settled by another request; wait for \
                 that answer, or resend the same payment header later"
            }
            AlreadySettled(_) => {
                "this payment was already used: it settled in the named transaction"
            }
            HandlerPanicked => "the handler failed; nothing was charged",
            BodyFailed => "the handler's response failed; nothing was charged",
            BodyFailedAfterSettling(_) => {
                "the handler's response failed after the payment settled in the named transaction"
            }
            SettleUnreachable => {
                "the facilitator could not be reached to settle; nothing was charged and the \
                 response was withheld: resend the same payment header"
            }
            SettlementTaskFailed => {
                "settlement failed inside the server; the payment may be retried with the same header"
            }
            ExpiredWhileServed(_) => {
                "the payment expired while the request was served, so it was not settled and the \
                 response was withheld; nothing was charged"
            }
            SettlementRefused(..) => {
                "settlement failed, so the response was withheld; nothing was charged"
            }
            SettlementPending(_) => {
                "the settlement's outcome is not known yet and the payment may have been charged; \
                 do not sign a new payment: resend the same payment header after Retry-After to \
                 learn the outcome"
            }
        })
    }

    /// The message of a refusal to price a request (quoted routes).
    fn pricing_message(&self) -> Cow<'_, str> {
        match self {
            Refusal::QuoteOutOfBounds(what) | Refusal::QuoteInvalid(what) => Cow::Owned(format!(
                "the server could not price this request ({what}); nothing was verified or charged"
            )),
            Refusal::BodyTooLarge => Cow::Borrowed(
                "the request body is larger than the 2 MiB this route reads to price it",
            ),
            _ => Cow::Borrowed("the request body could not be read; nothing was charged"),
        }
    }

    /// The receipt the answer carries, if any.
    fn receipted(&self) -> Option<&Receipted> {
        match self {
            Refusal::ExpiredWhileServed(r)
            | Refusal::SettlementRefused(_, r)
            | Refusal::SettlementPending(r) => Some(r),
            _ => None,
        }
    }

    /// The transaction the body names, if any.
    fn transaction(&self) -> Option<&str> {
        let named = match self {
            Refusal::AlreadySettled(tx) | Refusal::BodyFailedAfterSettling(tx) => tx.as_str(),
            other => other.receipted()?.receipt.transaction.as_str(),
        };
        Some(named).filter(|t| !t.is_empty())
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = error_body(status, self.code(), &self.message(), self.transaction());
        if let Some(r) = self.receipted() {
            attach_receipt(&mut response, r.version, &r.receipt);
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            retry_later(&mut response);
        }
        response
    }
}
