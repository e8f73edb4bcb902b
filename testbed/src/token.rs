//! The part of Circle's `FiatTokenV2_2` ABI the test bed and its users call.

// `sol!` generates undocumented items for each function, and one Rust method per Solidity function
// with all its parameters.
#![allow(missing_docs, clippy::too_many_arguments)]

alloy::sol! {
    /// Circle's `FiatTokenV2_2` (USDC): initialization, minting, and the EIP-3009 entry points.
    /// `transferWithAuthorization_0` is the `bytes signature` overload (`0xcf092995`),
    /// `transferWithAuthorization_1` the `v, r, s` one (`0xe3ee160e`).
    #[sol(rpc)]
    interface FiatToken {
        function initialize(
            string tokenName,
            string tokenSymbol,
            string tokenCurrency,
            uint8 tokenDecimals,
            address newMasterMinter,
            address newPauser,
            address newBlacklister,
            address newOwner
        ) external;
        function initializeV2(string newName) external;
        function initializeV2_1(address lostAndFound) external;
        function initializeV2_2(address[] accountsToBlacklist, string newSymbol) external;
        function configureMinter(address minter, uint256 minterAllowedAmount) external returns (bool);
        function mint(address to, uint256 amount) external returns (bool);

        function name() external view returns (string);
        function version() external pure returns (string);
        function decimals() external view returns (uint8);
        function balanceOf(address account) external view returns (uint256);
        function DOMAIN_SEPARATOR() external view returns (bytes32);
        function authorizationState(address authorizer, bytes32 nonce) external view returns (bool);

        function transferWithAuthorization(
            address from,
            address to,
            uint256 value,
            uint256 validAfter,
            uint256 validBefore,
            bytes32 nonce,
            bytes signature
        ) external;
        function transferWithAuthorization(
            address from,
            address to,
            uint256 value,
            uint256 validAfter,
            uint256 validBefore,
            bytes32 nonce,
            uint8 v,
            bytes32 r,
            bytes32 s
        ) external;
    }
}
