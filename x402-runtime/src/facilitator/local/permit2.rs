//! Permit2 payments in the in-process facilitator: `exact` with
//! `assetTransferMethod = "permit2"` and `upto`, checked with the rules of
//! [`schemes::permit2`](crate::schemes::permit2) and settled through the x402 proxies.
//!
//! On chain it checks, where an RPC is configured: the token and the proxy have code, the
//! permit's nonce is unused in Permit2's bitmap, the payer's balance covers the amount and the
//! payer has approved Permit2 for it (`permit2_allowance_required` otherwise). A payer who has
//! not may send an EIP-2612 permit of the token to Permit2 in the payment's
//! `eip2612GasSponsoring` extension: it is checked (owner, token, spender, deadline, value) and
//! the whole settlement is simulated with it, then submitted with the transfer through the
//! proxy's `settleWithPermit`. ERC-20 approval sponsoring (a signed approval transaction) is not
//! offered.

use alloy::primitives::{Address, B256, FixedBytes, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::TransactionRequest;
use alloy::transports::{RpcError, TransportError};

use super::{Chain, Checked, LocalFacilitator, Payment, Refusal, Transfer, Wanted};
use super::{invalid, reasons, requirement, rpc_fault};
use crate::proto::header::{PaymentPayload, parse_uint};
use crate::schemes::exact_evm::EXACT;
use crate::schemes::exact_evm::payload::parse_address;
use crate::schemes::permit2::{
    self, DEADLINE_MARGIN, EXACT_PROXY, PERMIT2, Permit2Payload, Terms, UPTO_PROXY, codes,
};
use crate::schemes::permit2::{Eip2612Permit, eip2612_permit};
use crate::schemes::upto_evm::UPTO;
use crate::schemes::{Rejection, permit2::Permit2Authorization};

/// Contract interfaces (generated bindings carry the Solidity argument lists).
mod contracts {
    alloy::sol! {
        /// The parts of an ERC-20 the checks read.
        #[sol(rpc)]
        interface IErc20 {
            function balanceOf(address account) external view returns (uint256);
            function allowance(address owner, address spender) external view returns (uint256);
        }

        /// Permit2's unordered nonces.
        #[sol(rpc)]
        interface IPermit2 {
            function nonceBitmap(address owner, uint256 wordPos) external view returns (uint256);
        }

        /// Permit2's transfer as the proxies take it.
        struct TokenPermissions {
            address token;
            uint256 amount;
        }
        /// Permit2's signed transfer without its spender (the proxy is the caller).
        struct PermitTransferFrom {
            TokenPermissions permitted;
            uint256 nonce;
            uint256 deadline;
        }
    }

    pub(super) mod exact {
        alloy::sol! {
            /// The x402 exact Permit2 proxy.
            #[sol(rpc)]
            interface IExactProxy {
                struct TokenPermissions { address token; uint256 amount; }
                struct PermitTransferFrom { TokenPermissions permitted; uint256 nonce; uint256 deadline; }
                struct Witness { address to; uint256 validAfter; }
                struct EIP2612Permit { uint256 value; uint256 deadline; bytes32 r; bytes32 s; uint8 v; }
                function settle(PermitTransferFrom permit, address owner, Witness witness, bytes signature) external;
                function settleWithPermit(EIP2612Permit permit2612, PermitTransferFrom permit, address owner, Witness witness, bytes signature) external;
            }
        }
    }

    pub(super) mod upto {
        alloy::sol! {
            /// The x402 upto Permit2 proxy.
            #[sol(rpc)]
            interface IUptoProxy {
                struct TokenPermissions { address token; uint256 amount; }
                struct PermitTransferFrom { TokenPermissions permitted; uint256 nonce; uint256 deadline; }
                struct Witness { address to; address facilitator; uint256 validAfter; }
                struct EIP2612Permit { uint256 value; uint256 deadline; bytes32 r; bytes32 s; uint8 v; }
                function settle(PermitTransferFrom permit, uint256 amount, address owner, Witness witness, bytes signature) external;
                function settleWithPermit(EIP2612Permit permit2612, PermitTransferFrom permit, uint256 amount, address owner, Witness witness, bytes signature) external;
            }
        }
    }
}

use contracts::exact::IExactProxy;
use contracts::upto::IUptoProxy;
use contracts::{IErc20, IPermit2};

impl LocalFacilitator {
    /// Checks a Permit2 payment for `want`: the scheme (`exact` over Permit2, or `upto`), the
    /// network, the permit's rules and signature, then the chain where it can be read.
    pub(super) async fn check_permit2<'a>(
        &'a self,
        want: &Wanted<'_>,
        envelope: &PaymentPayload,
        permit: Permit2Payload,
    ) -> Result<Checked<'a>, Refusal> {
        let upto = match (envelope.scheme.as_str(), want.scheme) {
            (EXACT, EXACT) => false,
            (UPTO, UPTO) => true,
            _ => {
                return Err(invalid(
                    reasons::SCHEME,
                    "a Permit2 payment is for the exact or upto scheme, as its requirements",
                ));
            }
        };
        if envelope.network != want.network {
            return Err(invalid(
                reasons::NETWORK_MISMATCH,
                "the payment is for another network",
            ));
        }
        let chain = self.chain_for(want).ok_or_else(|| {
            invalid(
                reasons::INVALID_NETWORK,
                format!("network `{}` is not served", want.network),
            )
        })?;
        let token = requirement(parse_address(want.asset, "asset"))?;
        let pay_to = requirement(parse_address(want.pay_to, "payTo"))?;
        let amount = requirement(parse_uint(want.amount, "amount"))?;
        let auth = &permit.authorization;
        // For `upto`, the requirements' amount is what to settle: at most what was permitted.
        if upto && amount > auth.amount {
            return Err(invalid(
                codes::SETTLEMENT_EXCEEDS,
                "the amount to settle is above the permitted maximum",
            ));
        }
        let facilitator = chain.writer.as_ref().map(|(_, address)| *address);
        let terms = Terms {
            spender: if upto { UPTO_PROXY } else { EXACT_PROXY },
            token,
            amount: if upto { auth.amount } else { amount },
            pay_to,
            facilitator: if upto {
                Some(facilitator.ok_or_else(|| {
                    invalid(codes::FACILITATOR, "this facilitator has no settlement key")
                })?)
            } else {
                None
            },
            now: self.now(),
            deadline_from: self.now().saturating_add(DEADLINE_MARGIN),
            deadline_until: None,
        };
        let separator = permit2::domain(chain.chain_id).separator();
        permit2::check(&permit, &terms).map_err(|rejection| match rejection {
            Rejection::Payment(code) => invalid(code, "the permit does not pay this offer"),
            Rejection::Malformed(why) => invalid(codes::SIGNATURE, why),
        })?;
        let digest = auth.signing_hash(&separator);
        self.check_signature(
            chain,
            auth.from,
            (&permit.signature, &digest),
            codes::SIGNATURE,
            want.settling,
        )
        .await?;
        let transfer = Transfer {
            from: auth.from,
            to: auth.to,
            value: amount,
        };
        let eip2612 = sponsored_approval(envelope, auth, token, transfer.value, self.now())?;
        let checked = Checked {
            chain,
            payment: Payment::Permit2(permit),
            asset: token,
            network: want.network.to_owned(),
            transfer,
            upto,
            eip2612,
        };
        if let Some(reader) = &chain.reader {
            check_on_chain(reader, &checked).await?;
        }
        Ok(checked)
    }
}

/// The payment's EIP-2612 permit to Permit2, checked against the permit it funds: the same
/// owner and token, Permit2 as spender, a value that covers what is moved, a deadline not past.
fn sponsored_approval(
    envelope: &PaymentPayload,
    auth: &Permit2Authorization,
    token: Address,
    moved: U256,
    now: u64,
) -> Result<Option<Eip2612Permit>, Refusal> {
    let permit = eip2612_permit(envelope.extensions.as_deref())
        .map_err(|why| invalid("invalid_eip2612_extension_format", why))?;
    let Some(permit) = permit else {
        return Ok(None);
    };
    let broken = if permit.from != auth.from {
        Some((
            "eip2612_from_mismatch",
            "the EIP-2612 permit is not the payer's",
        ))
    } else if permit.asset != token {
        Some((
            "eip2612_asset_mismatch",
            "the EIP-2612 permit is for another token",
        ))
    } else if permit.spender != PERMIT2 {
        Some((
            "eip2612_spender_not_permit2",
            "the EIP-2612 permit's spender is not Permit2",
        ))
    } else if permit.deadline < U256::from(now.saturating_add(DEADLINE_MARGIN)) {
        Some((
            "eip2612_deadline_expired",
            "the EIP-2612 permit expires too soon",
        ))
    } else if permit.amount < moved {
        Some((
            "permit2_2612_amount_mismatch",
            "the EIP-2612 permit does not cover the amount",
        ))
    } else {
        None
    };
    match broken {
        Some((reason, message)) => Err(invalid(reason, message)),
        None => Ok(Some(permit)),
    }
}

/// The proxy, the token and the nonce, the balance and the payer's allowance to Permit2 (with
/// an EIP-2612 permit instead: the settlement simulated as the facilitator would send it).
async fn check_on_chain(reader: &DynProvider, checked: &Checked<'_>) -> Result<(), Refusal> {
    let Payment::Permit2(permit) = &checked.payment else {
        return Ok(());
    };
    let (auth, token) = (&permit.authorization, checked.asset);
    let proxy = if checked.upto {
        UPTO_PROXY
    } else {
        EXACT_PROXY
    };
    for (address, reason, what) in [
        (
            token,
            reasons::ASSET_NOT_DEPLOYED,
            "the asset has no contract code",
        ),
        (
            PERMIT2,
            "permit2_proxy_not_deployed",
            "Permit2 is not deployed on this chain",
        ),
        (
            proxy,
            "permit2_proxy_not_deployed",
            "the x402 Permit2 proxy is not deployed on this chain",
        ),
    ] {
        if reader
            .get_code_at(address)
            .await
            .map_err(rpc_fault)?
            .is_empty()
        {
            return Err(invalid(reason, what));
        }
    }
    let word = IPermit2::new(PERMIT2, reader)
        .nonceBitmap(auth.from, auth.nonce >> 8)
        .call()
        .await
        .map_err(rpc_fault)?;
    if word.bit((auth.nonce & U256::from(0xff)).to::<usize>()) {
        return Err(invalid(codes::NONCE_USED, "the permit's nonce is used"));
    }
    let erc20 = IErc20::new(token, reader);
    let balance = erc20.balanceOf(auth.from).call().await.map_err(rpc_fault)?;
    if balance < auth.amount {
        return Err(invalid(
            codes::INSUFFICIENT_BALANCE,
            "the payer's balance is too low",
        ));
    }
    if checked.eip2612.is_some() {
        return simulate(reader, permit, checked).await;
    }
    let allowance = erc20
        .allowance(auth.from, PERMIT2)
        .call()
        .await
        .map_err(rpc_fault)?;
    if allowance < auth.amount {
        return Err(invalid(
            codes::ALLOWANCE_REQUIRED,
            "the payer has not approved Permit2 for this token",
        ));
    }
    Ok(())
}

/// Runs the settlement as the facilitator's key would send it, without sending it.
async fn simulate(
    reader: &DynProvider,
    permit: &Permit2Payload,
    checked: &Checked<'_>,
) -> Result<(), Refusal> {
    let Some(facilitator) = upto_facilitator(checked.chain) else {
        return Ok(());
    };
    let call = settle_call(reader, permit, checked).from(facilitator);
    match reader.call(call).await {
        Ok(_) => Ok(()),
        Err(e) => match revert_reason(&e) {
            Some(reason) => Err(invalid(reason, "the settlement would revert")),
            None => Err(rpc_fault(e)),
        },
    }
}

/// The proxy call that settles `permit` as `checked` says: what it moves (for `exact`, the
/// permitted amount), through `settleWithPermit` when the payer sent an EIP-2612 permit.
pub(super) fn settle_call(
    writer: &DynProvider,
    permit: &Permit2Payload,
    checked: &Checked<'_>,
) -> TransactionRequest {
    let a = &permit.authorization;
    let signature = permit.signature.clone();
    let amount = checked.transfer.value;
    if checked.upto {
        let permit = IUptoProxy::PermitTransferFrom {
            permitted: IUptoProxy::TokenPermissions {
                token: a.token,
                amount: a.amount,
            },
            nonce: a.nonce,
            deadline: a.deadline,
        };
        let witness = IUptoProxy::Witness {
            to: a.to,
            facilitator: a.facilitator.unwrap_or(Address::ZERO),
            validAfter: a.valid_after,
        };
        let proxy = IUptoProxy::new(UPTO_PROXY, writer);
        match checked.eip2612.as_ref().map(split) {
            Some((value, deadline, r, s, v)) => proxy
                .settleWithPermit(
                    IUptoProxy::EIP2612Permit {
                        value,
                        deadline,
                        r,
                        s,
                        v,
                    },
                    permit,
                    amount,
                    a.from,
                    witness,
                    signature,
                )
                .into_transaction_request(),
            None => proxy
                .settle(permit, amount, a.from, witness, signature)
                .into_transaction_request(),
        }
    } else {
        let permit = IExactProxy::PermitTransferFrom {
            permitted: IExactProxy::TokenPermissions {
                token: a.token,
                amount: a.amount,
            },
            nonce: a.nonce,
            deadline: a.deadline,
        };
        let witness = IExactProxy::Witness {
            to: a.to,
            validAfter: a.valid_after,
        };
        let proxy = IExactProxy::new(EXACT_PROXY, writer);
        match checked.eip2612.as_ref().map(split) {
            Some((value, deadline, r, s, v)) => proxy
                .settleWithPermit(
                    IExactProxy::EIP2612Permit {
                        value,
                        deadline,
                        r,
                        s,
                        v,
                    },
                    permit,
                    a.from,
                    witness,
                    signature,
                )
                .into_transaction_request(),
            None => proxy
                .settle(permit, a.from, witness, signature)
                .into_transaction_request(),
        }
    }
}

/// An EIP-2612 permit's value, deadline and `(r, s, v)`.
fn split(permit: &Eip2612Permit) -> (U256, U256, B256, B256, u8) {
    let signature = &permit.signature;
    (
        permit.amount,
        permit.deadline,
        B256::from_slice(&signature[..32]),
        B256::from_slice(&signature[32..64]),
        signature[64],
    )
}

/// Maps a failed simulation of a Permit2 settlement to a reason by the revert's selector;
/// `None` if it was not a revert (a transport fault).
pub(super) fn revert_reason(error: &TransportError) -> Option<&'static str> {
    let RpcError::ErrorResp(payload) = error else {
        return None;
    };
    let data = payload.as_revert_data().unwrap_or_default();
    let selector = data.get(..4).map(FixedBytes::<4>::from_slice);
    let known = [
        ("InvalidNonce()", codes::NONCE_USED),
        ("SignatureExpired(uint256)", codes::DEADLINE),
        ("InvalidSigner()", codes::SIGNATURE),
        ("InvalidSignature()", codes::SIGNATURE),
        ("InvalidSignatureLength()", codes::SIGNATURE),
        ("InvalidContractSignature()", codes::SIGNATURE),
        ("InvalidAmount(uint256)", codes::AMOUNT),
        ("PaymentTooEarly()", codes::NOT_YET_VALID),
        ("UnauthorizedFacilitator()", codes::FACILITATOR),
        ("AmountExceedsPermitted()", codes::SETTLEMENT_EXCEEDS),
        ("Permit2612AmountMismatch()", "permit2_2612_amount_mismatch"),
        (
            "ERC20InsufficientBalance(address,uint256,uint256)",
            codes::INSUFFICIENT_BALANCE,
        ),
        (
            "ERC20InsufficientAllowance(address,uint256,uint256)",
            codes::ALLOWANCE_REQUIRED,
        ),
    ];
    let by_selector = selector.and_then(|selector| {
        known.iter().find_map(|(signature, reason)| {
            let hash = alloy::primitives::keccak256(signature.as_bytes());
            (hash[..4] == selector[..]).then_some(*reason)
        })
    });
    let text = payload.message.to_ascii_lowercase();
    Some(by_selector.unwrap_or(if text.contains("exceeds balance") {
        codes::INSUFFICIENT_BALANCE
    } else if text.contains("exceeds allowance") || text.contains("transfer_from_failed") {
        codes::ALLOWANCE_REQUIRED
    } else {
        reasons::TRANSACTION_FAILED
    }))
}

/// Whether `chain` can settle `upto` payments: it has a settlement key, whose address the
/// payer's permit must name as its facilitator.
pub(super) fn upto_facilitator(chain: &Chain) -> Option<Address> {
    chain.writer.as_ref().map(|(_, address)| *address)
}
