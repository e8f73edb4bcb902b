// The official TypeScript x402 facilitator for Solana (@x402/core `x402Facilitator` + @x402/svm
// `exact`, v2 on the networks below and v1 on `solana`, `solana-devnet`, `solana-testnet`),
// co-signing as fee payer and sending through a Solana JSON-RPC, served over node:http on 127.0.0.1:
//   GET /supported, POST /verify and POST /settle ({x402Version, paymentPayload, paymentRequirements}).
// usage: FACILITATOR_KEY=<keypair> RPC_URL=http://127.0.0.1:… [PORT=0] [NETWORKS=solana:…,solana:…] \
//            node facilitator_svm.mjs
// FACILITATOR_KEY: the fee payer, as base58 of the 64-byte keypair, base58 of the seed, or a JSON
// byte array. NETWORKS defaults to Solana devnet and mainnet (the test bed's RPC serves both mints).
// Prints `listening <port>` on stdout once it accepts connections.
import http from "node:http";
import { x402Facilitator } from "@x402/core/facilitator";
import { toFacilitatorSvmSigner, SOLANA_DEVNET_CAIP2, SOLANA_MAINNET_CAIP2 } from "@x402/svm";
import { registerExactSvmScheme } from "@x402/svm/exact/facilitator";
import { signerFromKey } from "./svm_key.mjs";

const rpcUrl = process.env.RPC_URL;
if (!rpcUrl || !process.env.FACILITATOR_KEY) {
  console.error("usage: FACILITATOR_KEY=<keypair> RPC_URL=http://127.0.0.1:… [PORT=0] node facilitator_svm.mjs");
  process.exit(2);
}
const networks = process.env.NETWORKS ? process.env.NETWORKS.split(",") : [SOLANA_DEVNET_CAIP2, SOLANA_MAINNET_CAIP2];
const keypair = await signerFromKey(process.env.FACILITATOR_KEY, "FACILITATOR_KEY").catch((e) => {
  console.error(e.message);
  process.exit(2);
});
const facilitator = new x402Facilitator();
registerExactSvmScheme(facilitator, {
  signer: toFacilitatorSvmSigner(keypair, { defaultRpcUrl: rpcUrl }),
  networks,
});

const MAX_BODY = 1 << 20;

async function readBody(request) {
  const parts = [];
  let size = 0;
  for await (const part of request) {
    size += part.length;
    if (size > MAX_BODY) throw new Error("body too large");
    parts.push(part);
  }
  return Buffer.concat(parts).toString("utf8");
}

function answer(response, status, value) {
  const body = JSON.stringify(value);
  response.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  response.end(body);
}

const actions = {
  "/verify": (body) => facilitator.verify(body.paymentPayload, body.paymentRequirements),
  "/settle": (body) => facilitator.settle(body.paymentPayload, body.paymentRequirements),
};

const server = http.createServer(async (request, response) => {
  try {
    if (request.method === "GET" && request.url === "/supported") {
      return answer(response, 200, facilitator.getSupported());
    }
    const action = request.method === "POST" ? actions[request.url] : undefined;
    if (!action) return answer(response, 404, { error: "not found" });
    let body;
    try {
      body = JSON.parse(await readBody(request));
    } catch (e) {
      return answer(response, 400, { error: `the body is not JSON: ${e.message}` });
    }
    return answer(response, 200, await action(body));
  } catch (error) {
    return answer(response, 500, { error: String(error?.message ?? error) });
  }
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  console.log(`listening ${server.address().port}`);
});
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => process.exit(0));
