// Pays one URL with the official TypeScript client (@x402/fetch + @x402/evm) from a local key and
// prints one JSON line: {"status", "body", "receipt", "error"}.
// usage: PAYER_KEY=0x… node pay.mjs URL [METHOD] [JSON_BODY]
// Pays `exact` (EIP-3009 or Permit2) and `upto` offers. PAY_ANY_ASSET=1 lifts the client's default
// spend control that only pays the SDK's default tokens (for a plain ERC-20 on the test chain);
// PAY_RPC_URL lets the client read the chain, so that it signs an EIP-2612 permit to Permit2 when
// the server offers gas sponsoring and the payer has not approved Permit2.
import { x402Client, wrapFetchWithPayment, x402HTTPClient } from "@x402/fetch";
import { registerExactEvmScheme } from "@x402/evm/exact/client";
import { UptoEvmScheme } from "@x402/evm/upto/client";
import { privateKeyToAccount } from "viem/accounts";

const [url, method = "GET", body] = process.argv.slice(2);
const key = process.env.PAYER_KEY;
if (!url || !key) {
  console.error("usage: PAYER_KEY=0x… node pay.mjs URL [METHOD] [JSON_BODY]");
  process.exit(2);
}
const client = new x402Client();
const signer = privateKeyToAccount(key);
const schemeOptions = process.env.PAY_RPC_URL ? { rpcUrl: process.env.PAY_RPC_URL } : undefined;
registerExactEvmScheme(client, { signer, schemeOptions });
client.register("eip155:*", new UptoEvmScheme(signer, schemeOptions));
if (process.env.PAY_ANY_ASSET === "1") client.setSpendControls({ allowedAssets: true });
const paying = wrapFetchWithPayment(fetch, client);
const init = { method };
if (body !== undefined) {
  init.body = body;
  init.headers = { "content-type": "application/json" };
}
const result = { status: 0, body: null, receipt: null, error: null };
try {
  const response = await paying(url, init);
  result.status = response.status;
  result.body = await response.text();
  try {
    result.receipt = new x402HTTPClient(client).getPaymentSettleResponse((name) => response.headers.get(name));
  } catch (e) {
    result.error = `no receipt: ${e.message}`;
  }
} catch (e) {
  result.error = String(e?.message ?? e);
}
console.log(JSON.stringify(result));
