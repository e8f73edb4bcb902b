// Signs a Permit2 payment with the official @x402/evm client (2.27.0) and prints its payload as JSON:
// the `exact` scheme with extra.assetTransferMethod = "permit2" (ExactEvmScheme), or the `upto` scheme
// (UptoEvmScheme). The client picks the nonce (random 256-bit), deadline (now + maxTimeoutSeconds) and
// validAfter ("0") itself, and signs under {name: "Permit2", chainId, verifyingContract: PERMIT2}.
//   X402_PAYER_KEY=0x… node scripts/permit2_sign.mjs exact|upto <asset> <amount> <payTo> [facilitator]
// The key comes from the environment so it never shows in a process list.
import { ExactEvmScheme } from "@x402/evm/exact/client";
import { UptoEvmScheme } from "@x402/evm/upto/client";
import { privateKeyToAccount } from "viem/accounts";

const [scheme, asset, amount, payTo, facilitator] = process.argv.slice(2);
const key = process.env.X402_PAYER_KEY;
if (!key || !["exact", "upto"].includes(scheme) || !asset || !amount || !payTo || (scheme === "upto" && !facilitator)) {
  console.error("usage: X402_PAYER_KEY=0x… node scripts/permit2_sign.mjs exact|upto <asset> <amount> <payTo> [facilitator]");
  process.exit(2);
}
const signer = privateKeyToAccount(key);
const requirements = {
  scheme,
  network: "eip155:84532",
  asset,
  amount,
  payTo,
  maxTimeoutSeconds: 300,
  extra: scheme === "exact" ? { assetTransferMethod: "permit2" } : { facilitatorAddress: facilitator },
};
const client = scheme === "exact" ? new ExactEvmScheme(signer) : new UptoEvmScheme(signer);
const payload = await client.createPaymentPayload(2, requirements);
console.log(JSON.stringify(payload));
