//! x402 wire types, v2 and v1, as they travel in headers, bodies and facilitator calls.
//!
//! Field names are camelCase on the wire; amounts and timestamps are decimal strings;
//! `x402Version` and `maxTimeoutSeconds` are JSON numbers. Optional fields are omitted when
//! absent and accept `null` when read.

pub mod codes;
pub mod header;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Header carrying the v2 challenge (`base64(PaymentRequired)`).
pub const PAYMENT_REQUIRED: &str = "payment-required";
/// Header carrying a v2 payment (`base64(PaymentPayload)`).
pub const PAYMENT_SIGNATURE: &str = "payment-signature";
/// Header carrying the v2 receipt (`base64(SettleResponse)`).
pub const PAYMENT_RESPONSE: &str = "payment-response";
/// Header carrying a v1 payment.
pub const X_PAYMENT: &str = "x-payment";
/// Header carrying the v1 receipt.
pub const X_PAYMENT_RESPONSE: &str = "x-payment-response";
/// The headers a browser client must be allowed to read (`Access-Control-Expose-Headers`).
pub const EXPOSED_HEADERS: &str = "PAYMENT-REQUIRED, PAYMENT-RESPONSE, X-PAYMENT-RESPONSE";

/// The x402 protocol version of a payment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum X402Version {
    /// v1: `X-PAYMENT` / `X-PAYMENT-RESPONSE`, v1 network names.
    V1,
    /// v2: `PAYMENT-SIGNATURE` / `PAYMENT-RESPONSE`, CAIP-2 networks.
    V2,
}

impl X402Version {
    /// The number on the wire.
    pub fn number(self) -> u8 {
        match self {
            X402Version::V1 => 1,
            X402Version::V2 => 2,
        }
    }
}

/// What is being paid for (v2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(
    feature = "schemars",
    derive(schemars::JsonSchema),
    schemars(rename = "X402ResourceInfo")
)]
pub struct ResourceInfo {
    /// Absolute URL of the resource.
    pub url: String,
    /// Human description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Media type of the paid response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
}

/// One way to pay (v2): an entry of `accepts`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(
    feature = "schemars",
    derive(schemars::JsonSchema),
    schemars(rename = "X402PaymentRequirements")
)]
pub struct PaymentRequirements {
    /// Payment scheme, `"exact"`.
    pub scheme: String,
    /// CAIP-2 network id.
    pub network: String,
    /// Amount in atomic units (decimal string).
    pub amount: String,
    /// Token contract address.
    pub asset: String,
    /// Recipient address.
    pub pay_to: String,
    /// Longest time the payment may take, in seconds.
    pub max_timeout_seconds: u64,
    /// Scheme data; for EVM `exact`, the EIP-712 domain `name` and `version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Map<String, Value>>,
}

/// The v2 challenge: the decoded `PAYMENT-REQUIRED` header.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(
    feature = "schemars",
    derive(schemars::JsonSchema),
    schemars(rename = "X402PaymentRequired")
)]
pub struct PaymentRequired {
    /// Always 2.
    pub x402_version: u8,
    /// Why payment is required (absent payment, or the reason a payment was refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The resource.
    pub resource: ResourceInfo,
    /// The offers, preferred first.
    pub accepts: Vec<PaymentRequirements>,
    /// Extensions, key → `{info, schema}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Map<String, Value>>,
}

/// One way to pay (v1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(
    feature = "schemars",
    derive(schemars::JsonSchema),
    schemars(rename = "X402PaymentRequirementsV1")
)]
pub struct PaymentRequirementsV1 {
    /// Payment scheme, `"exact"`.
    pub scheme: String,
    /// v1 network name, e.g. `base-sepolia`.
    pub network: String,
    /// Amount in atomic units (decimal string).
    pub max_amount_required: String,
    /// Absolute URL of the resource.
    pub resource: String,
    /// Human description (may be empty).
    pub description: String,
    /// Media type of the paid response.
    pub mime_type: String,
    /// v1 discovery data; `null` when absent.
    #[serde(default)]
    #[cfg_attr(feature = "schemars", schemars(with = "Option<Map<String, Value>>"))]
    pub output_schema: Option<Value>,
    /// Recipient address.
    pub pay_to: String,
    /// Longest time the payment may take, in seconds.
    pub max_timeout_seconds: u64,
    /// Token contract address.
    pub asset: String,
    /// EIP-712 domain `name` and `version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Map<String, Value>>,
}

/// The v1 challenge body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(
    feature = "schemars",
    derive(schemars::JsonSchema),
    schemars(rename = "X402PaymentRequiredV1")
)]
pub struct PaymentRequiredV1 {
    /// Always 1.
    pub x402_version: u8,
    /// Why payment is required.
    pub error: String,
    /// The offers.
    pub accepts: Vec<PaymentRequirementsV1>,
}

/// The requirements sent to a facilitator: v2 or v1 shape, matching the payment's version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Requirements {
    /// x402 v2.
    V2(PaymentRequirements),
    /// x402 v1.
    V1(PaymentRequirementsV1),
}

impl Requirements {
    /// The network, as written in this shape (v2: CAIP-2; v1: its name).
    pub fn network(&self) -> &str {
        match self {
            Requirements::V2(r) => &r.network,
            Requirements::V1(r) => &r.network,
        }
    }

    /// The asset (token contract address), as written.
    pub fn asset(&self) -> &str {
        match self {
            Requirements::V2(r) => &r.asset,
            Requirements::V1(r) => &r.asset,
        }
    }

    /// The payment scheme (`exact`).
    pub fn scheme(&self) -> &str {
        match self {
            Requirements::V2(r) => &r.scheme,
            Requirements::V1(r) => &r.scheme,
        }
    }

    /// The amount in atomic units (v2 `amount`, v1 `maxAmountRequired`).
    pub fn amount(&self) -> &str {
        match self {
            Requirements::V2(r) => &r.amount,
            Requirements::V1(r) => &r.max_amount_required,
        }
    }

    /// The scheme's `extra`, as written.
    pub fn extra(&self) -> Option<&Map<String, Value>> {
        match self {
            Requirements::V2(r) => r.extra.as_ref(),
            Requirements::V1(r) => r.extra.as_ref(),
        }
    }

    /// Sets the amount (atomic units): for `upto`, `/settle` is asked to settle what was used.
    pub fn set_amount(&mut self, amount: String) {
        match self {
            Requirements::V2(r) => r.amount = amount,
            Requirements::V1(r) => r.max_amount_required = amount,
        }
    }
}

/// Body of `POST /verify` and `POST /settle`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FacilitatorRequest {
    /// The payment's `x402Version`.
    pub x402_version: u8,
    /// The client's payment payload, forwarded verbatim.
    pub payment_payload: Box<RawValue>,
    /// Our own requirements the payment must satisfy (never the client's copy).
    pub payment_requirements: Requirements,
}

/// Answer of `POST /verify`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyResponse {
    /// Whether the payment is valid.
    pub is_valid: bool,
    /// Machine-readable reason when invalid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_reason: Option<String>,
    /// Human-readable detail when invalid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_message: Option<String>,
    /// The paying address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
}

/// Answer of `POST /settle`, and the receipt in `PAYMENT-RESPONSE`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettleResponse {
    /// Whether the transfer happened.
    pub success: bool,
    /// Machine-readable reason on failure (`settlement_pending` when the outcome is unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_reason: Option<String>,
    /// Human-readable detail on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// The paying address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
    /// Transaction hash; empty on failure.
    #[serde(default)]
    pub transaction: String,
    /// Network the transaction is on (CAIP-2 for v2, v1 name for v1).
    #[serde(default)]
    pub network: String,
    /// Settled amount, when the scheme reports one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
}

/// One payment kind a facilitator supports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupportedKind {
    /// Protocol version.
    pub x402_version: u8,
    /// Scheme.
    pub scheme: String,
    /// Network (CAIP-2 for v2, v1 name for v1).
    pub network: String,
    /// Scheme data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Map<String, Value>>,
}

/// Answer of `GET /supported`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SupportedResponse {
    /// Supported kinds.
    pub kinds: Vec<SupportedKind>,
    /// Supported extensions.
    #[serde(default)]
    pub extensions: Vec<String>,
    /// Signer addresses per network pattern.
    #[serde(default)]
    pub signers: Map<String, Value>,
}

impl SupportedResponse {
    /// Whether `(version, scheme, network)` is listed.
    pub fn supports(&self, version: u8, scheme: &str, network: &str) -> bool {
        self.kinds
            .iter()
            .any(|k| k.x402_version == version && k.scheme == scheme && k.network == network)
    }
}
