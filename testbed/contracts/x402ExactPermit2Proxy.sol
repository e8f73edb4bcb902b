// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

import {ISignatureTransfer} from "permit2/src/interfaces/ISignatureTransfer.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

/// @title x402 `exact` payments through Permit2
/// @notice Moves exactly the signed amount from the payer to the witnessed recipient. The payer signs a
/// Permit2 `PermitWitnessTransferFrom` whose spender is this contract and whose witness names the
/// recipient (`to`) and the earliest time (`validAfter`); anyone may submit it.
/// @dev Written for the x402 test bed, at the address the official `@x402/evm` client signs for. The
/// Permit2 address is a constant, so the runtime code has no immutables and can be planted as is.
contract x402ExactPermit2Proxy is ReentrancyGuard {
    /// @notice Where the payee and the earliest settlement time are bound into the payer's signature.
    struct Witness {
        address to;
        uint256 validAfter;
    }

    /// @notice An EIP-2612 permit of the token, letting Permit2 spend `value` (gas-sponsored approval).
    struct EIP2612Permit {
        uint256 value;
        uint256 deadline;
        bytes32 r;
        bytes32 s;
        uint8 v;
    }

    /// @notice Uniswap's Permit2 at its canonical address.
    ISignatureTransfer public constant PERMIT2 = ISignatureTransfer(0x000000000022D473030F116dDEE9F6B43aC78BA3);

    /// @notice The witness type string Permit2 appends to `PermitWitnessTransferFrom(...,`.
    string public constant WITNESS_TYPE_STRING =
        "Witness witness)TokenPermissions(address token,uint256 amount)Witness(address to,uint256 validAfter)";

    /// @notice EIP-712 type hash of `Witness`.
    bytes32 public constant WITNESS_TYPEHASH = keccak256("Witness(address to,uint256 validAfter)");

    /// @notice A payment was settled through `settle`.
    event Settled();
    /// @notice A payment was settled through `settleWithPermit`.
    event SettledWithPermit();

    /// @notice The permitted amount is zero: there is nothing to pay.
    error InvalidAmount();
    /// @notice The witness names no recipient (the zero address).
    error InvalidDestination();
    /// @notice The owner is the zero address.
    error InvalidOwner();
    /// @notice Part of the interface; never raised here, since the Permit2 address is a constant.
    error InvalidPermit2Address();
    /// @notice The block's timestamp is before the witness's `validAfter`.
    error PaymentTooEarly();
    /// @notice The EIP-2612 permit's value is below the amount transferred.
    error Permit2612AmountMismatch();

    /// @notice Settles a payment signed for Permit2: transfers `permit.permitted.amount` of
    /// `permit.permitted.token` from `owner` to `witness.to`.
    function settle(
        ISignatureTransfer.PermitTransferFrom calldata permit,
        address owner,
        Witness calldata witness,
        bytes calldata signature
    ) external nonReentrant {
        _settle(permit, owner, witness, signature);
        emit Settled();
    }

    /// @notice Like `settle`, after letting Permit2 spend the owner's tokens with an EIP-2612 permit.
    /// @dev Reverts with `Permit2612AmountMismatch` when `permit2612.value` is below
    /// `permit.permitted.amount` (the amount transferred), before anything else. A failing `permit`
    /// call is ignored (it may have been front-run, or the allowance given otherwise): Permit2's
    /// transfer then succeeds or fails on the allowance actually in place.
    function settleWithPermit(
        EIP2612Permit calldata permit2612,
        ISignatureTransfer.PermitTransferFrom calldata permit,
        address owner,
        Witness calldata witness,
        bytes calldata signature
    ) external nonReentrant {
        if (permit2612.value < permit.permitted.amount) revert Permit2612AmountMismatch();
        try IERC20Permit(permit.permitted.token).permit(
            owner, address(PERMIT2), permit2612.value, permit2612.deadline, permit2612.v, permit2612.r, permit2612.s
        ) {} catch {}
        _settle(permit, owner, witness, signature);
        emit SettledWithPermit();
    }

    function _settle(
        ISignatureTransfer.PermitTransferFrom calldata permit,
        address owner,
        Witness calldata witness,
        bytes calldata signature
    ) private {
        if (owner == address(0)) revert InvalidOwner();
        if (witness.to == address(0)) revert InvalidDestination();
        if (permit.permitted.amount == 0) revert InvalidAmount();
        if (block.timestamp < witness.validAfter) revert PaymentTooEarly();
        PERMIT2.permitWitnessTransferFrom(
            permit,
            ISignatureTransfer.SignatureTransferDetails({to: witness.to, requestedAmount: permit.permitted.amount}),
            owner,
            keccak256(abi.encode(WITNESS_TYPEHASH, witness.to, witness.validAfter)),
            WITNESS_TYPE_STRING,
            signature
        );
    }
}
