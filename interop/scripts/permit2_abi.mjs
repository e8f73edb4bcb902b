// Compares the ABIs of the test bed's x402 Permit2 proxies (interop/contracts/*.json, built by
// testbed/contracts/build.mjs) with the ABIs the official @x402/evm client calls them with: every function,
// event and error, with names, types and internal types. Prints what differs; exits 1 when anything does.
//   node scripts/permit2_abi.mjs
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { x402ExactPermit2ProxyABI, x402UptoPermit2ProxyABI } from "@x402/evm";

const CONTRACTS = join(dirname(fileURLToPath(import.meta.url)), "../contracts");

// A JSON text with object keys sorted, so entries compare by content.
function canonical(value) {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.keys(value).sort().map((k) => [k, canonical(value[k])]));
  }
  return value;
}

let differs = false;
for (const [name, official] of [["x402ExactPermit2Proxy", x402ExactPermit2ProxyABI], ["x402UptoPermit2Proxy", x402UptoPermit2ProxyABI]]) {
  const ours = JSON.parse(readFileSync(join(CONTRACTS, `${name}.json`), "utf8")).abi;
  const a = new Set(ours.map((e) => JSON.stringify(canonical(e))));
  const b = new Set(official.map((e) => JSON.stringify(canonical(e))));
  const onlyOurs = [...a].filter((e) => !b.has(e));
  const onlyOfficial = [...b].filter((e) => !a.has(e));
  for (const e of onlyOurs) console.log(`${name}: only in ours: ${e}`);
  for (const e of onlyOfficial) console.log(`${name}: only in @x402/evm: ${e}`);
  differs ||= onlyOurs.length > 0 || onlyOfficial.length > 0;
  console.log(`${name}: ${ours.length} entries, ${onlyOurs.length + onlyOfficial.length} differences`);
}
process.exit(differs ? 1 : 0);
