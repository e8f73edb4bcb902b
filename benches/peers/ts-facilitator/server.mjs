// The official TypeScript x402 facilitator (@x402/core + @x402/evm, `exact` on EVM) settling
// through a viem wallet, served over plain node:http on 127.0.0.1 for the settlement benchmark.
//
//   PORT=0 RPC=http://127.0.0.1:8545 FACILITATOR_PK=0x… X402_INTEROP=interop \
//       node benches/peers/ts-facilitator/server.mjs
//
// Prints `listening <port>` on stdout once it accepts connections. The packages are loaded from
// the test bed's pinned install (X402_INTEROP, default `interop` at the repository root), so this
// file needs no node_modules of its own. viem is tuned as the test bed advises for a fair
// comparison: a nonce manager (concurrent settlements from one key) and a 50 ms polling interval
// (its default for Base Sepolia is 1 s per receipt poll).
import http from "node:http";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const interop = path.resolve(process.env.X402_INTEROP ?? path.join(here, "../../../interop"));
const load = createRequire(path.join(interop, "package.json"));

const { x402Facilitator } = load("@x402/core/facilitator");
const { ExactEvmScheme } = load("@x402/evm/exact/facilitator");
const { toFacilitatorEvmSigner } = load("@x402/evm");
const { createWalletClient, http: viemHttp, publicActions, nonceManager } = load("viem");
const { privateKeyToAccount } = load("viem/accounts");
const { baseSepolia } = load("viem/chains");

const rpc = process.env.RPC;
const key = process.env.FACILITATOR_PK;
if (!rpc || !key) {
  console.error("RPC and FACILITATOR_PK are required");
  process.exit(2);
}
const network = process.env.NETWORK ?? "eip155:84532";
const pollingInterval = Number(process.env.POLL_MS ?? 50);

const account = privateKeyToAccount(key, { nonceManager });
const chain = { ...baseSepolia, rpcUrls: { default: { http: [rpc] } } };
const client = createWalletClient({ account, chain, transport: viemHttp(rpc), pollingInterval })
  .extend(publicActions);

// The signer the scheme settles with: reads, typed-data checks and writes all go to the node.
const signer = toFacilitatorEvmSigner({
  address: account.address,
  getCode: (args) => client.getCode(args),
  readContract: (args) => client.readContract({ ...args, args: args.args ?? [] }),
  verifyTypedData: (args) => client.verifyTypedData(args),
  writeContract: (args) => client.writeContract({ ...args, args: args.args ?? [] }),
  sendTransaction: (args) => client.sendTransaction(args),
  waitForTransactionReceipt: (args) => client.waitForTransactionReceipt(args),
});

const facilitator = new x402Facilitator();
facilitator.register(network, new ExactEvmScheme(signer));

function readBody(request) {
  return new Promise((resolve, reject) => {
    const parts = [];
    request.on("data", (part) => parts.push(part));
    request.on("end", () => resolve(Buffer.concat(parts)));
    request.on("error", reject);
  });
}

function answer(response, status, value) {
  const body = JSON.stringify(value);
  response.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
  });
  response.end(body);
}

// POST /verify and /settle take {x402Version, paymentPayload, paymentRequirements}.
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
    if (!action) {
      return answer(response, 404, { error: "not found" });
    }
    let body;
    try {
      body = JSON.parse((await readBody(request)).toString("utf8"));
    } catch {
      return answer(response, 400, { error: "the body is not JSON" });
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
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => process.exit(0));
}
