// Self-check of the Solana test bed, in node alone (the Rust side has its own test in
// tests/svm_testbed.rs): starts testbed/svm/rpc.mjs, checks its JSON-RPC answers to good and bad
// requests, then lets the official x402 pieces pay for real on it: the official facilitator
// (interop/scripts/facilitator_svm.mjs, fee payer S3), the official @x402/express seller
// (interop/scripts/server_svm.mjs, payTo S4) and the official client (interop/scripts/pay_svm.mjs,
// payer S2), then an x402 v1 offer on mainnet USDC (network `solana`) through a minimal v1 seller
// written here (payer S6). The payer's USDC must fall and the merchant's rise by exactly the
// price, and the receipt must name a landed transaction. Exits 0 when every check passed; bounded
// to 60 s (it takes about two).
//
//   node testbed/svm/selftest.mjs
import { spawn } from "node:child_process";
import http from "node:http";
import { createRequire } from "node:module";
import { createInterface } from "node:readline";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const INTEROP = resolve(process.env.X402_INTEROP ?? join(HERE, "../../interop"));
const PRICE = 10_000n; // $0.01 in USDC's 6 decimals
const kit = createRequire(join(INTEROP, "package.json"))("@solana/kit");
const children = [];
let failures = 0;

setTimeout(() => fail("the self-check took over 60 s"), 60_000).unref();

function fail(message) {
  console.error(`FAIL ${message}`);
  for (const child of children) child.kill("SIGKILL");
  process.exit(1);
}

function check(condition, what, detail = "") {
  if (condition) console.log(`ok   ${what}`);
  else {
    failures += 1;
    console.log(`FAIL ${what} ${detail}`);
  }
}

/** Spawns `node script`, resolving with the first stdout line that matches `ready`. */
function start(script, env, ready, args = []) {
  const child = spawn(process.execPath, [script, ...args], {
    env: { ...process.env, ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  children.push(child);
  let stderr = "";
  child.stderr.on("data", (d) => (stderr = (stderr + d).slice(-4000)));
  return new Promise((started, failed) => {
    const lines = createInterface({ input: child.stdout });
    lines.on("line", (line) => {
      const match = line.match(ready);
      if (match) started({ child, match, line });
    });
    child.on("exit", (code) => failed(new Error(`${script} exited (${code}) before it was ready:\n${stderr}`)));
  });
}

function run(script, env, args) {
  const child = spawn(process.execPath, [script, ...args], { env: { ...process.env, ...env } });
  children.push(child);
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  return new Promise((done) => child.on("exit", (code) => done({ code, stdout, stderr })));
}

async function rpc(url, method, params = []) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
  });
  return response.json();
}

/** The token amount of a token account (u64 little-endian at byte 64 of its 165 bytes). */
async function tokenAmount(url, ata) {
  const answer = await rpc(url, "getAccountInfo", [ata, { encoding: "base64" }]);
  const data = Buffer.from(answer.result.value.data[0], "base64");
  return data.readBigUInt64LE(64);
}

async function checkRpc(bed) {
  const url = bed.rpc;
  const mint = await rpc(url, "getAccountInfo", [bed.mints.devnet, { encoding: "base64", commitment: "confirmed" }]);
  const mintData = Buffer.from(mint.result.value.data[0], "base64");
  check(mintData.length === 82 && mintData[44] === 6, "devnet USDC mint: 82 bytes, 6 decimals");
  check(mint.result.value.owner === bed.tokenProgram, "the mint belongs to the SPL Token program");
  const payer = bed.accounts.find((a) => a.name === "S2");
  check((await tokenAmount(url, payer.atas.mainnet)) === 1_000_000_000n, "S2 holds 1000 mainnet USDC");
  const unknown = await rpc(url, "getTransaction", []);
  check(unknown.error?.code === -32601, "unknown method: -32601", JSON.stringify(unknown));
  const bad = await rpc(url, "getBalance", ["not-an-address"]);
  check(bad.error?.code === -32602 && /address/.test(bad.error.message), "bad address: -32602", JSON.stringify(bad));
  const badTx = await rpc(url, "sendTransaction", ["AAAA", { encoding: "base64" }]);
  check(badTx.error?.code === -32602, "undecodable transaction: -32602", JSON.stringify(badTx));
  const parse = await (await fetch(url, { method: "POST", body: "{" })).json();
  check(parse.error?.code === -32700, "not JSON: -32700");
  const big = await fetch(url, { method: "POST", body: "x".repeat(2 << 20) }).catch((e) => ({ status: String(e) }));
  check(big.status === 413, "a 2 MiB body: HTTP 413", String(big.status));
  const none = await rpc(url, "getSignatureStatuses", [["1".repeat(64)], { searchTransactionHistory: true }]);
  check(none.result?.value?.[0] === null, "status of an unknown signature: null");
  const ata = await rpc(url, "testbed_tokenAccount", [payer.address, bed.mints.mainnet]);
  check(ata.result === payer.atas.mainnet, "testbed_tokenAccount derives S2's mainnet token account");
  const minted = await rpc(url, "testbed_mint", [payer.address, 5, bed.mints.devnet]);
  const again = await rpc(url, "testbed_mint", [payer.address, 5]);
  check(again.result?.amount === "1000000010", "testbed_mint twice adds up", JSON.stringify([minted, again]));
  const fresh = "8SFqwqnq4whPhs8icwHA2hQg3hUoN1qrCLK1SBx3WKwe"; // S5
  const lamports = (await rpc(url, "getBalance", [fresh])).result.value;
  await rpc(url, "requestAirdrop", [fresh, 1_000_000]);
  const dropped = await rpc(url, "requestAirdrop", [fresh, 1_000_000]);
  check(typeof dropped.result === "string" && (await rpc(url, "getBalance", [fresh])).result.value === lamports + 2_000_000,
    "requestAirdrop twice: both land", JSON.stringify(dropped));
  const before = (await rpc(url, "getLatestBlockhash", [{ commitment: "confirmed" }])).result.value;
  const expired = (await rpc(url, "testbed_expireBlockhash")).result;
  check(expired.blockhash !== before.blockhash && expired.lastValidBlockHeight > before.lastValidBlockHeight,
    "testbed_expireBlockhash: a new blockhash");
}

/** A signed SOL transfer (System program) from the seed-`seed` account, base64 on the wire. */
async function transfer(url, seed, to, lamports, { sign = true } = {}) {
  const from = await kit.createKeyPairSignerFromPrivateKeyBytes(new Uint8Array(32).fill(seed));
  const data = new Uint8Array(12);
  const view = new DataView(data.buffer);
  view.setUint32(0, 2, true);
  view.setBigUint64(4, BigInt(lamports), true);
  const instruction = {
    programAddress: "11111111111111111111111111111111",
    accounts: [
      { address: from.address, role: kit.AccountRole.WRITABLE_SIGNER, signer: from },
      { address: to, role: kit.AccountRole.WRITABLE },
    ],
    data,
  };
  const lifetime = (await rpc(url, "getLatestBlockhash")).result.value;
  const message = kit.pipe(
    kit.createTransactionMessage({ version: 0 }),
    (m) => kit.setTransactionMessageFeePayer(from.address, m),
    (m) => kit.setTransactionMessageLifetimeUsingBlockhash(lifetime, m),
    (m) => kit.appendTransactionMessageInstruction(instruction, m),
  );
  const compiled = kit.compileTransaction(message);
  const transaction = sign ? await kit.signTransaction([from.keyPair], compiled) : compiled;
  return kit.getBase64EncodedWireTransaction(transaction);
}

const statusOf = async (url, signature) =>
  (await rpc(url, "getSignatureStatuses", [[signature], { searchTransactionHistory: true }])).result.value[0];

async function checkSends(bed) {
  const url = bed.rpc;
  const to = bed.accounts.find((a) => a.name === "S4").address;
  const b64 = { encoding: "base64" };
  const skip = { encoding: "base64", skipPreflight: true };

  const unsigned = await transfer(url, 1, to, 1, { sign: false });
  const simulated = await rpc(url, "simulateTransaction", [unsigned, { ...b64, sigVerify: false }]);
  check(simulated.result?.value?.err === null, "simulate without signatures (sigVerify false): ok", JSON.stringify(simulated));
  const refused = await rpc(url, "sendTransaction", [unsigned, skip]);
  check(refused.error?.code === -32003, "send without signature: -32003", JSON.stringify(refused));

  const good = await transfer(url, 1, to, 1000);
  const sent = await rpc(url, "sendTransaction", [good, b64]);
  check((await statusOf(url, sent.result))?.err === null, "a transfer lands", JSON.stringify(sent));
  const resent = await rpc(url, "sendTransaction", [good, skip]);
  check(resent.result === sent.result, "a resend answers the same signature");

  const broke = await transfer(url, 1, to, 10n ** 15n);
  const preflight = await rpc(url, "sendTransaction", [broke, b64]);
  check(preflight.error?.code === -32002 && preflight.error.data?.err?.InstructionError?.[1]?.Custom === 1,
    "a failing transfer with preflight: -32002 with its error", JSON.stringify(preflight.error));
  const landedFailed = await rpc(url, "sendTransaction", [broke, skip]);
  const failedStatus = await statusOf(url, landedFailed.result);
  check(failedStatus?.err?.InstructionError?.[0] === 0 && failedStatus.status?.Err !== undefined,
    "a failing transfer without preflight lands with its error", JSON.stringify(failedStatus));

  await rpc(url, "testbed_dropSends", [1]);
  const lost = await transfer(url, 1, to, 1001);
  const dropped = await rpc(url, "sendTransaction", [lost, skip]);
  check(typeof dropped.result === "string" && (await statusOf(url, dropped.result)) === null,
    "testbed_dropSends: the signature answered, the transaction never lands");
  const retried = await rpc(url, "sendTransaction", [lost, skip]);
  check(retried.result === dropped.result && (await statusOf(url, retried.result)) !== null, "a resend of a dropped send lands");

  await rpc(url, "testbed_holdSends", [1]);
  const held = await rpc(url, "sendTransaction", [await transfer(url, 1, to, 1002), skip]);
  const pending = await statusOf(url, held.result);
  const released = (await rpc(url, "testbed_releaseHeld")).result;
  check(pending === null && released?.[0]?.signature === held.result && released[0].landed && (await statusOf(url, held.result)) !== null,
    "testbed_holdSends / testbed_releaseHeld: lands on release", JSON.stringify(released));

  await rpc(url, "testbed_setSendDelay", [20]);
  const slow = await rpc(url, "sendTransaction", [await transfer(url, 1, to, 1003), skip]);
  await rpc(url, "testbed_setSendDelay", [0]);
  check((await statusOf(url, slow.result))?.err === null, "testbed_setSendDelay: the send still lands");

  const stale = await transfer(url, 1, to, 1004);
  await rpc(url, "testbed_expireBlockhash");
  const expired = await rpc(url, "sendTransaction", [stale, skip]);
  check(expired.error?.code === -32002 && expired.error.data?.err === "BlockhashNotFound",
    "a send over an expired blockhash: -32002 BlockhashNotFound", JSON.stringify(expired.error));
}

/** A minimal x402 v1 seller on 127.0.0.1 for one route priced `amount` of mainnet USDC on `solana`
 * (v1 name), verified and settled by the facilitator at `facilitatorUrl`. */
function startV1Seller(bed, facilitatorUrl, payTo, feePayer, amount) {
  const server = http.createServer(async (request, response) => {
    const resource = `http://${request.headers.host}${request.url}`;
    const requirements = {
      scheme: "exact", network: "solana", maxAmountRequired: String(amount), resource,
      description: "v1 test resource", mimeType: "application/json", payTo, maxTimeoutSeconds: 60,
      asset: bed.mints.mainnet, extra: { feePayer },
    };
    const refuse = (error) => {
      response.writeHead(402, { "content-type": "application/json" });
      response.end(JSON.stringify({ x402Version: 1, error, accepts: [requirements] }));
    };
    const header = request.headers["x-payment"];
    if (!header) return refuse("X-PAYMENT header is required");
    const ask = async (path, paymentPayload) => (await fetch(`${facilitatorUrl}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ x402Version: 1, paymentPayload, paymentRequirements: requirements }),
    })).json();
    try {
      const payload = JSON.parse(Buffer.from(header, "base64").toString("utf8"));
      const verified = await ask("/verify", payload);
      if (!verified.isValid) return refuse(verified.invalidReason);
      const settled = await ask("/settle", payload);
      if (!settled.success) return refuse(settled.errorReason);
      const receipt = Buffer.from(JSON.stringify(settled)).toString("base64");
      response.writeHead(200, { "content-type": "application/json", "x-payment-response": receipt });
      response.end('{"paid":true}');
    } catch (e) {
      refuse(String(e?.message ?? e));
    }
  });
  return new Promise((listening) => server.listen(0, "127.0.0.1", () => listening(server)));
}

async function main() {
  const rpcScript = join(HERE, "rpc.mjs");
  const { child: chain, line } = await start(rpcScript, {}, /^\{/);
  const bed = JSON.parse(line);
  const account = (name) => bed.accounts.find((a) => a.name === name);
  console.log(`rpc ${bed.rpc}`);
  await checkRpc(bed);
  await checkSends(bed);

  const facilitator = await start(join(INTEROP, "scripts/facilitator_svm.mjs"),
    { FACILITATOR_KEY: account("S3").secretKey, RPC_URL: bed.rpc }, /^listening (\d+)$/);
  const facilitatorUrl = `http://127.0.0.1:${facilitator.match[1]}`;
  const supported = await (await fetch(`${facilitatorUrl}/supported`)).json();
  const kind = supported.kinds.find((k) => k.network === "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1");
  check(kind?.extra?.feePayer === account("S3").address, "official facilitator: devnet kind with fee payer S3");

  const seller = await start(join(INTEROP, "scripts/server_svm.mjs"),
    { FACILITATOR_URL: facilitatorUrl, PAY_TO: account("S4").address, PORT: "0" }, /^listening (127\.0\.0\.1:\d+)$/);
  const paidUrl = `http://${seller.match[1]}/paid`;

  const payerBefore = await tokenAmount(bed.rpc, account("S2").atas.devnet);
  const merchantBefore = await tokenAmount(bed.rpc, account("S4").atas.devnet);
  const paid = await run(join(INTEROP, "scripts/pay_svm.mjs"),
    { PAYER_KEY: account("S2").secretKey, PAY_RPC_URL: bed.rpc }, [paidUrl]);
  let result = {};
  try {
    result = JSON.parse(paid.stdout.trim().split("\n").pop());
  } catch {
    check(false, "pay_svm.mjs prints one JSON line", `${paid.stdout}\n${paid.stderr}`);
  }
  check(result.status === 200 && result.body === '{"paid":true}', "the official client paid: 200", JSON.stringify(result));
  check(result.receipt?.success === true && result.receipt?.network === "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
    "receipt: success on devnet", JSON.stringify(result.receipt));
  check(result.receipt?.payer === account("S2").address, "receipt: payer S2");
  const signature = result.receipt?.transaction ?? "";
  const status = await rpc(bed.rpc, "getSignatureStatuses", [[signature]]);
  const landed = status.result?.value?.[0];
  check(landed?.confirmationStatus === "finalized" && landed.err === null, "the receipt's transaction landed without error",
    JSON.stringify(status));
  const payerAfter = await tokenAmount(bed.rpc, account("S2").atas.devnet);
  const merchantAfter = await tokenAmount(bed.rpc, account("S4").atas.devnet);
  check(payerBefore - payerAfter === PRICE, `payer S2 paid exactly ${PRICE}`, `${payerBefore} → ${payerAfter}`);
  check(merchantAfter - merchantBefore === PRICE, `merchant S4 received exactly ${PRICE}`, `${merchantBefore} → ${merchantAfter}`);

  // x402 v1 on mainnet USDC (network name `solana`), second payer S6, through a minimal v1 seller.
  const v1Price = 20_000n;
  const v1Seller = await startV1Seller(bed, facilitatorUrl, account("S4").address, account("S3").address, v1Price);
  const v1Url = `http://127.0.0.1:${v1Seller.address().port}/v1`;
  const mainnetBefore = [await tokenAmount(bed.rpc, account("S6").atas.mainnet), await tokenAmount(bed.rpc, account("S4").atas.mainnet)];
  const v1 = await run(join(INTEROP, "scripts/pay_svm.mjs"),
    { PAYER_KEY: account("S6").secretKey, PAY_RPC_URL: bed.rpc }, [v1Url]);
  let v1Result = {};
  try {
    v1Result = JSON.parse(v1.stdout.trim().split("\n").pop());
  } catch {
    check(false, "pay_svm.mjs prints one JSON line (v1)", `${v1.stdout}\n${v1.stderr}`);
  }
  check(v1Result.status === 200 && v1Result.receipt?.success === true && v1Result.receipt?.network === "solana",
    "the official client paid a v1 offer on mainnet USDC", JSON.stringify(v1Result));
  const mainnetAfter = [await tokenAmount(bed.rpc, account("S6").atas.mainnet), await tokenAmount(bed.rpc, account("S4").atas.mainnet)];
  check(mainnetBefore[0] - mainnetAfter[0] === v1Price && mainnetAfter[1] - mainnetBefore[1] === v1Price,
    `v1: exactly ${v1Price} mainnet USDC moved from S6 to S4`, `${mainnetBefore} → ${mainnetAfter}`);
  v1Seller.close();

  for (const child of [seller.child, facilitator.child]) child.kill("SIGTERM");
  // The chain goes away when its standard input closes.
  const exited = new Promise((done) => chain.on("exit", (code) => done(code)));
  chain.stdin.end();
  const code = await Promise.race([exited, new Promise((done) => setTimeout(() => done("timeout"), 5000))]);
  check(code === 0, "rpc.mjs exits when its stdin closes", String(code));
  console.log(failures === 0 ? "selftest: all checks passed" : `selftest: ${failures} check(s) failed`);
  process.exit(failures === 0 ? 0 : 1);
}

main().catch((e) => fail(e?.stack ?? String(e)));
