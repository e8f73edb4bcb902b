// Compiles the test bed's contracts with pinned solc-js releases from interop/node_modules, offline,
// and writes their artifacts to interop/contracts/ (git-ignored):
//   Permit2                 Uniswap's Permit2 from @uniswap/v4-periphery@1.0.3 (lib/permit2), solc 0.8.17,
//                           Permit2's own settings (via-IR, optimizer runs 1000000, bytecode hash none)
//   x402ExactPermit2Proxy   testbed/contracts/, solc 0.8.30
//   x402UptoPermit2Proxy    testbed/contracts/, solc 0.8.30
//   PlainToken              testbed/contracts/ (OpenZeppelin 5.7.0 ERC20), solc 0.8.30
//   PermitToken             testbed/contracts/ (OpenZeppelin 5.7.0 ERC20Permit), solc 0.8.30
// Each artifact holds the abi, creation and runtime bytecode, keccak256 of the runtime bytecode, the
// compiler version and settings. A run whose inputs (this script, the contract sources, the package
// versions of the compilers and libraries) hash to the key recorded in interop/contracts/manifest.json is a
// no-op. Usage: node testbed/contracts/build.mjs [--force | --check]; --check only tells, by its exit status
// (0: up to date), whether a build is needed.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, "../..");
const MODULES = join(ROOT, "interop/node_modules");
const OUT = join(ROOT, "interop/contracts");
const PERMIT2_ROOT = join(MODULES, "@uniswap/v4-periphery/lib/permit2");
const require = createRequire(join(MODULES, "x.js"));

// Where an import path's files live, by prefix (the remappings of both builds).
const PREFIXES = [
  ["@openzeppelin/contracts/", join(MODULES, "@openzeppelin/contracts/")],
  ["permit2/", PERMIT2_ROOT + "/"],
  ["solmate/", join(PERMIT2_ROOT, "lib/solmate/")],
  ["src/", join(PERMIT2_ROOT, "src/")],
];

const COMMON_OUTPUT = {
  "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "evm.deployedBytecode.immutableReferences"] },
};

// Permit2's foundry.toml: solc 0.8.17, optimizer on, 1000000 runs, via_ir, bytecode_hash none.
const PERMIT2_BUILD = {
  compiler: "solc",
  sources: ["src/Permit2.sol"],
  contracts: { Permit2: "src/Permit2.sol" },
  settings: {
    optimizer: { enabled: true, runs: 1000000 },
    viaIR: true,
    metadata: { bytecodeHash: "none" },
    outputSelection: COMMON_OUTPUT,
  },
};

// The project's contracts: solc 0.8.30 (OpenZeppelin 5.7 needs ^0.8.20, ERC20Permit ^0.8.24), cancun (what
// anvil 1.7.1 runs at least), no CBOR metadata so the runtime code does not depend on paths.
const PROJECT_BUILD = {
  compiler: "solc-0.8.30",
  sources: ["x402ExactPermit2Proxy.sol", "x402UptoPermit2Proxy.sol", "PlainToken.sol", "PermitToken.sol"],
  contracts: {
    x402ExactPermit2Proxy: "x402ExactPermit2Proxy.sol",
    x402UptoPermit2Proxy: "x402UptoPermit2Proxy.sol",
    PlainToken: "PlainToken.sol",
    PermitToken: "PermitToken.sol",
  },
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: "cancun",
    metadata: { bytecodeHash: "none", appendCBOR: false },
    outputSelection: COMMON_OUTPUT,
  },
};

function readSource(path) {
  if (!path.includes("/")) return readFileSync(join(HERE, path), "utf8");
  for (const [prefix, dir] of PREFIXES) {
    if (path.startsWith(prefix)) return readFileSync(join(dir, path.slice(prefix.length)), "utf8");
  }
  throw new Error(`no home for import ${path}`);
}

function findImports(path) {
  try {
    return { contents: readSource(path) };
  } catch (e) {
    return { error: `${path}: ${e.message}` };
  }
}

function packageVersion(name) {
  return JSON.parse(readFileSync(join(MODULES, name, "package.json"), "utf8")).version;
}

function inputKey() {
  const hash = createHash("sha256");
  hash.update(readFileSync(fileURLToPath(import.meta.url)));
  for (const file of readdirSync(HERE).filter((f) => f.endsWith(".sol")).sort()) {
    hash.update(`\0${file}\0`).update(readFileSync(join(HERE, file)));
  }
  for (const name of ["solc", "solc-0.8.30", "@openzeppelin/contracts", "@uniswap/v4-periphery"]) {
    hash.update(`\0${name}@${packageVersion(name)}`);
  }
  return hash.digest("hex");
}

function keccakHex(hex) {
  const { keccak256 } = require("viem");
  return keccak256(`0x${hex}`);
}

function compile(build) {
  const solc = require(build.compiler);
  const sources = Object.fromEntries(build.sources.map((s) => [s, { content: readSource(s) }]));
  const input = { language: "Solidity", sources, settings: build.settings };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
  const errors = (output.errors || []).filter((e) => e.severity === "error");
  if (errors.length) {
    throw new Error(`${build.compiler}:\n${errors.map((e) => e.formattedMessage).join("\n")}`);
  }
  const artifacts = {};
  for (const [name, file] of Object.entries(build.contracts)) {
    const c = output.contracts?.[file]?.[name];
    if (!c) throw new Error(`${build.compiler} produced no ${name} in ${file}`);
    const runtime = c.evm.deployedBytecode.object;
    artifacts[name] = {
      contract: name,
      source: file,
      compiler: solc.version(),
      settings: { ...build.settings, outputSelection: undefined },
      abi: c.abi,
      bytecode: `0x${c.evm.bytecode.object}`,
      deployedBytecode: `0x${runtime}`,
      immutableReferences: c.evm.deployedBytecode.immutableReferences,
      runtimeKeccak256: keccakHex(runtime),
    };
  }
  return artifacts;
}

function main() {
  const force = process.argv.includes("--force");
  const key = inputKey();
  let manifest = null;
  try {
    manifest = JSON.parse(readFileSync(join(OUT, "manifest.json"), "utf8"));
  } catch {
    // no previous build
  }
  const complete = manifest && Object.keys(manifest.contracts || {}).every((name) => existsSync(join(OUT, `${name}.json`)));
  const upToDate = !force && complete && manifest.key === key;
  if (process.argv.includes("--check")) process.exit(upToDate ? 0 : 1);
  if (upToDate) {
    console.log(`contracts: up to date (${OUT})`);
    return;
  }
  const started = Date.now();
  mkdirSync(OUT, { recursive: true });
  const artifacts = {};
  for (const build of [PROJECT_BUILD, PERMIT2_BUILD]) {
    const t = Date.now();
    Object.assign(artifacts, compile(build));
    console.log(`contracts: ${Object.keys(build.contracts).join(", ")} compiled in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  }
  const hashes = {};
  for (const [name, artifact] of Object.entries(artifacts)) {
    writeFileSync(join(OUT, `${name}.json`), JSON.stringify(artifact, null, 2) + "\n");
    hashes[name] = { runtimeKeccak256: artifact.runtimeKeccak256, compiler: artifact.compiler };
  }
  // The manifest is written last (atomically), so an interrupted build is redone next time.
  const seconds = (Date.now() - started) / 1000;
  const tmp = join(OUT, "manifest.json.tmp");
  writeFileSync(tmp, JSON.stringify({ key, seconds, contracts: hashes }, null, 2) + "\n");
  renameSync(tmp, join(OUT, "manifest.json"));
  for (const [name, h] of Object.entries(hashes)) console.log(`contracts: ${name} runtime keccak256 ${h.runtimeKeccak256}`);
  console.log(`contracts: built in ${seconds.toFixed(1)} s into ${OUT}`);
}

try {
  main();
} catch (e) {
  console.error(`contracts: build failed: ${e.message}`);
  process.exit(1);
}
