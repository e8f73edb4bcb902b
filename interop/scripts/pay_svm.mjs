// Pays one URL on Solana with the official TypeScript client (@x402/fetch + @x402/svm `exact`, v2
// and v1) and prints one JSON line: {"status", "body", "receipt", "error"} (as pay.mjs does).
// usage: PAYER_KEY=<keypair> PAY_RPC_URL=http://127.0.0.1:… node pay_svm.mjs URL [METHOD] [JSON_BODY]
// PAYER_KEY: base58 of the 64-byte keypair, base58 of the 32-byte seed, or a JSON byte array.
// PAY_RPC_URL: the Solana JSON-RPC the client reads the mint and the latest blockhash from (the
// test bed's testbed/svm/rpc.mjs). It is required: `registerExactSvmScheme` would ignore it and
// use the public cluster, so the schemes are registered here by hand with it. PAY_ANY_ASSET=1
// lifts the client's default spend control that only pays the SDK's default tokens.
import { x402Client, wrapFetchWithPayment, x402HTTPClient } from "@x402/fetch";
import { ExactSvmScheme } from "@x402/svm/exact/client";
import { ExactSvmSchemeV1 } from "@x402/svm/exact/v1/client";
import { NETWORKS as V1_NETWORKS } from "@x402/svm/v1";
import { signerFromKey } from "./svm_key.mjs";

const [url, method = "GET", body] = process.argv.slice(2);
const rpcUrl = process.env.PAY_RPC_URL;
if (!url || !process.env.PAYER_KEY || !rpcUrl) {
  console.error("usage: PAYER_KEY=<keypair> PAY_RPC_URL=http://127.0.0.1:… node pay_svm.mjs URL [METHOD] [JSON_BODY]");
  process.exit(2);
}
const result = { status: 0, body: null, receipt: null, error: null };
try {
  const signer = await signerFromKey(process.env.PAYER_KEY, "PAYER_KEY");
  const client = new x402Client();
  client.register("solana:*", new ExactSvmScheme(signer, { rpcUrl }));
  for (const network of V1_NETWORKS) client.registerV1(network, new ExactSvmSchemeV1(signer, { rpcUrl }));
  if (process.env.PAY_ANY_ASSET === "1") client.setSpendControls({ allowedAssets: true });
  const paying = wrapFetchWithPayment(fetch, client);
  const init = { method };
  if (body !== undefined) {
    init.body = body;
    init.headers = { "content-type": "application/json" };
  }
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
