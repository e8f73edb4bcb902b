// Signs one Solana `exact` payment with the official TypeScript client (@x402/svm) and prints its
// payment payload (the envelope a client sends, as JSON) on one line, without paying anything:
// for tests that hand the payment to a facilitator themselves.
// usage: PAYER_KEY=<keypair> PAY_RPC_URL=http://127.0.0.1:… node sign_svm.mjs REQUIREMENTS_JSON [VERSION]
// REQUIREMENTS_JSON: the payment requirements (v2 shape, or v1 with VERSION=1; `extra.feePayer` set).
// PAYER_KEY: as pay_svm.mjs (base58 of the 64-byte keypair or of the seed, or a JSON byte array).
// PAY_RPC_URL: the Solana JSON-RPC the client reads the mint and the latest blockhash from.
import { ExactSvmScheme } from "@x402/svm/exact/client";
import { ExactSvmSchemeV1 } from "@x402/svm/exact/v1/client";
import { signerFromKey } from "./svm_key.mjs";

const [requirementsJson, version = "2"] = process.argv.slice(2);
const rpcUrl = process.env.PAY_RPC_URL;
if (!requirementsJson || !process.env.PAYER_KEY || !rpcUrl || !["1", "2"].includes(version)) {
  console.error("usage: PAYER_KEY=<keypair> PAY_RPC_URL=http://127.0.0.1:… node sign_svm.mjs REQUIREMENTS_JSON [1|2]");
  process.exit(2);
}
try {
  const requirements = JSON.parse(requirementsJson);
  const signer = await signerFromKey(process.env.PAYER_KEY, "PAYER_KEY");
  if (version === "2") {
    const { payload } = await new ExactSvmScheme(signer, { rpcUrl }).createPaymentPayload(2, requirements);
    const resource = { url: "http://127.0.0.1/paid", description: "", mimeType: "application/json" };
    console.log(JSON.stringify({ x402Version: 2, resource, accepted: requirements, payload }));
  } else {
    const { payload } = await new ExactSvmSchemeV1(signer, { rpcUrl }).createPaymentPayload(1, requirements);
    console.log(JSON.stringify({ x402Version: 1, scheme: requirements.scheme, network: requirements.network, payload }));
  }
} catch (e) {
  console.error(`sign_svm: ${e?.message ?? e}`);
  process.exit(1);
}
