//! Stable error codes of the paywall's own answers.
//!
//! 402 refusals that come from the facilitator carry its reason verbatim instead; codes a client
//! does not know must be shown, never treated as fatal.

/// 402: no payment header was sent.
pub const PAYMENT_REQUIRED: &str = "PAYMENT-SIGNATURE header is required";
/// 400 (431 when over the size cap): the header is not a decodable x402 payment.
pub const INVALID_PAYLOAD: &str = "invalid_payload";
/// 402: the payment's `x402Version` does not match its header.
pub const INVALID_X402_VERSION: &str = "invalid_x402_version";
/// 402: a scheme other than `exact`.
pub const INVALID_SCHEME: &str = "invalid_scheme";
/// 402: a network this route does not offer.
pub const INVALID_NETWORK: &str = "invalid_network";
/// 402: the accepted offer differs from ours (asset, amount, recipient, timeout, extra, resource).
pub const INVALID_PAYMENT_REQUIREMENTS: &str = "invalid_payment_requirements";
/// 402: the signed value is not exactly the price.
pub const VALUE_MISMATCH: &str = "invalid_exact_evm_payload_authorization_value_mismatch";
/// 402: the signed recipient is not ours.
pub const RECIPIENT_MISMATCH: &str = "invalid_exact_evm_payload_recipient_mismatch";
/// 402: `validBefore` is too close, past, or too far ahead.
pub const VALID_BEFORE: &str = "invalid_exact_evm_payload_authorization_valid_before";
/// 402: `validAfter` is in the future.
pub const VALID_AFTER: &str = "invalid_exact_evm_payload_authorization_valid_after";
/// 402: the signature is malformed (high `s`, bad `v`) or not by the payer.
pub const INVALID_SIGNATURE: &str = "invalid_exact_evm_payload_signature";
/// 409: the same payment is being processed by another request.
pub const PAYMENT_IN_PROGRESS: &str = "payment_in_progress";
/// 409: the payment was already settled; the body names the transaction.
pub const PAYMENT_ALREADY_SETTLED: &str = "payment_already_settled";
/// A facilitator's answer to a `/settle` of a payment it already settled (the official Solana
/// facilitator's; ours names the transaction it landed in).
pub const DUPLICATE_SETTLEMENT: &str = "duplicate_settlement";
/// 503 (409 to a resend): settlement was submitted but its outcome is not known yet (the
/// facilitator said so, or `/settle` did not answer in time). The `PAYMENT-RESPONSE`
/// receipt carries this reason and the transaction when known. A resend of the same payment
/// reconciles: one `/settle` with the same payload, answered from its outcome.
pub const SETTLEMENT_PENDING: &str = "settlement_pending";
/// The payment's authorization expired without ever being used on chain, so it can never
/// settle and nothing was charged: the 402 that says so carries a fresh challenge, and a new
/// payment may be signed.
pub const EXPIRED_UNSETTLED: &str = "expired_unsettled";
/// 502: the facilitator's answer to `/verify` was not a valid answer.
pub const UNEXPECTED_VERIFY_ERROR: &str = "unexpected_verify_error";
/// 502: the facilitator's answer to `/settle` was not a valid, consistent answer.
pub const UNEXPECTED_SETTLE_ERROR: &str = "unexpected_settle_error";
/// 504: the facilitator did not answer `/verify` in time (nothing was charged).
pub const FACILITATOR_TIMEOUT: &str = "facilitator_timeout";
/// 500: the route is paid but the router has no x402 configuration installed.
pub const NOT_CONFIGURED: &str = "x402_not_configured";
/// 500: the configuration offers no token in this route's currency.
pub const NO_OFFER: &str = "x402_no_offer";
/// 500: an internal failure of the paywall (logged).
pub const INTERNAL_ERROR: &str = "internal_error";
/// 503: the facilitator's `/supported` has not answered yet, so payments cannot be checked.
pub const FACILITATOR_UNAVAILABLE: &str = "facilitator_unavailable";
/// 503: the replay store cannot be reached, so the payment cannot be checked for reuse.
pub const REPLAY_STORE_UNAVAILABLE: &str = "replay_store_unavailable";
/// 503: the server is shutting down and admits no new payment (nothing was verified or
/// charged); the same payment can be resent to another instance, or after `Retry-After`.
pub const SERVER_SHUTTING_DOWN: &str = "server_shutting_down";
/// 402: `/verify` refused the payment without giving a reason.
pub const INVALID_PAYMENT: &str = "invalid_payment";
/// 402: settlement failed without a reason from the facilitator.
pub const SETTLEMENT_FAILED: &str = "settlement_failed";
/// 400: the payment's `payment-identifier` id is not 16–128 characters of
/// `[A-Za-z0-9_-]`, or the extension it echoed is not an object (see
/// [`identifier`](crate::server::identifier)).
pub const INVALID_PAYMENT_IDENTIFIER: &str = "invalid_payment_identifier";
/// 400: the route declared `payment-identifier` with `required: true` and the payment
/// carries no id.
pub const PAYMENT_IDENTIFIER_REQUIRED: &str = "payment_identifier_required";
/// 409: the payment's `payment-identifier` id is bound to another payment for this request;
/// nothing was verified, settled or run.
pub const PAYMENT_IDENTIFIER_CONFLICT: &str = "payment_identifier_conflict";
/// 503: this process holds as many payment identifiers as it may; nothing was verified.
pub const PAYMENT_IDENTIFIER_CACHE_FULL: &str = "payment_identifier_cache_full";
/// 500: the route's quote function priced the request outside its published `min`–`max` (a
/// bug in the server); nothing was verified or charged.
pub const QUOTE_OUT_OF_BOUNDS: &str = "x402_quote_out_of_bounds";
/// 500: the route's quote function gave an amount that is not a price in the route's currency
/// (more decimals than the token has, say); nothing was verified or charged.
pub const QUOTE_INVALID: &str = "x402_quote_invalid";
/// 413: a quoted route reads the request body to price it, and this one is over the limit.
pub const REQUEST_BODY_TOO_LARGE: &str = "request_body_too_large";
/// 400: a quoted route could not read the request body to price it.
pub const INVALID_REQUEST_BODY: &str = "invalid_request_body";
/// 402 to a bare probe (no query, no body, no payment) of a route priced per request that its
/// quote function cannot price: the offers carry the route's maximum; send the request itself
/// (its shape is in `extensions.bazaar`) to get its quote.
pub const QUOTE_NEEDS_REQUEST: &str = "price_depends_on_request";
/// 500: an `upto` handler answered 2xx without saying what to charge; nothing was charged.
pub const CHARGE_MISSING: &str = "x402_charge_missing";
/// 500: an `upto` handler charged more than the payer authorized, or an amount that is not a
/// price in the route's currency; nothing was charged.
pub const CHARGE_INVALID: &str = "x402_charge_invalid";
