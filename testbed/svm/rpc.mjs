// The test bed's Solana chain: one LiteSVM (the real SVM with the real SPL Token, Associated Token
// Account, Compute Budget and Memo programs, checking real ed25519 signatures) behind a small
// Solana JSON-RPC 2.0 front on 127.0.0.1, so that the official x402 client and facilitator (and
// ours) can pay and settle on it offline.
//
//   node testbed/svm/rpc.mjs [--port N | N] [--cluster devnet|mainnet]
//
// At start it plants USDC (6 decimals, SPL Token program, mint authority S1) at both the devnet
// (4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU) and the mainnet
// (EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v) mint addresses and funds the test accounts S1..S6
// (ed25519 seed = 32 times the byte n: public test keys, never use them anywhere real): 10 SOL each
// (100 000 SOL to S1, the funder), each one's associated token account for both mints, and
// 1000 USDC of both to the payers S2 and S6, all with real signed transactions. Then it listens
// on 127.0.0.1 (port 0 = chosen by the OS) and prints one JSON line on stdout:
//   {"rpc":"http://127.0.0.1:PORT","cluster":"devnet","genesisHash":…,"tokenProgram":…,"decimals":6,
//    "mints":{"devnet":…,"mainnet":…},"payerMint":"1000000000",
//    "accounts":[{"name":"S2","seed":2,"address":…,"secretKey":<base58 of the 64-byte keypair>,
//                 "role":"payer","atas":{"devnet":…,"mainnet":…}}, …]}
// It exits when its standard input closes: spawn it with a piped stdin and it cannot outlive its
// parent. Every call is logged on stderr.
//
// Methods (JSON-RPC 2.0 over HTTP POST, single or batch; numbers are plain JSON numbers):
//   getAccountInfo(address, {encoding: "base64"})   {context, value: null | {data: [b64, "base64"],
//                                                    executable, lamports, owner, rentEpoch, space}}
//   getBalance(address)                             {context, value: lamports}
//   getLatestBlockhash()                            {context, value: {blockhash, lastValidBlockHeight}}
//   isBlockhashValid(blockhash)                     {context, value: whether it is the latest}
//   getMinimumBalanceForRentExemption(length)       lamports
//   getSlot(), getBlockHeight()                     the clock's slot (it moves only on testbed_expireBlockhash)
//   getGenesisHash()                                the devnet genesis hash (--cluster mainnet: mainnet's)
//   getVersion(), getHealth()                       constant answers
//   simulateTransaction(tx, {encoding, sigVerify, replaceRecentBlockhash})
//                                                   {context, value: {err, logs, accounts: null,
//                                                    unitsConsumed, returnData: null, …}}
//   sendTransaction(tx, {encoding, skipPreflight})  base58 signature
//   getSignatureStatuses([sig…], {searchTransactionHistory})
//                                                   {context, value: [null | {slot, confirmations: null,
//                                                    err, status, confirmationStatus: "finalized"}]}
//   requestAirdrop(address, lamports)               base58 signature (a real transfer from S1, ≤ 1000 SOL)
// Test-only methods:
//   testbed_mint(owner, amount, mint?)   creates owner's token account if needed and mints `amount`
//                                        atomic units (integer or decimal string) of `mint` (default:
//                                        devnet USDC) with a real MintTo signed by S1;
//                                        → {signature, ata, amount: <balance after, decimal string>}
//   testbed_tokenAccount(owner, mint?)   the address of owner's associated token account of `mint`
//                                        (default devnet USDC), whether it exists or not
//   testbed_expireBlockhash()            a new blockhash; every transaction signed over an older one
//                                        now fails with BlockhashNotFound; the slot moves 151 ahead;
//                                        → {blockhash, lastValidBlockHeight}
//   testbed_setSendDelay(ms)             sendTransaction executes at once but answers `ms` later
//                                        (0..=120000): a slow node whose answer a client may give up on
//   testbed_dropSends(n)                 the next n sendTransaction calls answer the signature, as a
//                                        node does, but the transaction never lands: a lost send
//   testbed_holdSends(n)                 the next n sends answer the signature but wait unexecuted…
//   testbed_releaseHeld()                …until this executes them in order; → [{signature, err}]
//
// Differences from a validator: all state is final at once (every status is "finalized", commitment
// and minContextSlot are accepted and ignored); only the latest blockhash is valid (LiteSVM keeps
// one); both getSignatureStatuses modes search the whole history. And one deliberate difference: a
// sendTransaction that cannot land (bad signature, unknown blockhash, fee payer without funds, already
// rejected…) is answered with a JSON-RPC error (-32003 signature verification failure, -32002 for the
// others, `data.err` the transaction error) instead of the signature of a transaction that a
// validator would silently drop; a transaction that lands and fails (an instruction error, fee
// charged) answers its signature and its status carries the error, as on a validator. The silent
// drop is still there, on request: testbed_dropSends. Unknown method: -32601; bad params: -32602
// naming the parameter; bodies over 1 MiB: HTTP 413 with -32600. Bad input never stops the server.
import http from "node:http";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const INTEROP = resolve(process.env.X402_INTEROP ?? join(HERE, "../../interop"));
const load = createRequire(join(INTEROP, "package.json"));
const { LiteSVM, FailedTransactionMetadata } = load("litesvm");
const kit = load("@solana/kit");
const token = load("@solana-program/token");

const MINTS = {
  devnet: "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU",
  mainnet: "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
};
const GENESIS = {
  devnet: "EtWTRABZaYq6iMfeYKouRu166VU2xqa1wcaWoxPkrZBG",
  mainnet: "5eykt4UsFv8P8NJdTREpY1vzqKqZKvdpKuc147dw2N9d",
};
const MEMO_PROGRAM = "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr";
const SYSTEM_PROGRAM = "11111111111111111111111111111111";
const DECIMALS = 6;
const PAYER_MINT = 1_000_000_000n; // 1000 USDC
const AIRDROP = 10_000_000_000n; // 10 SOL to each test account
const FUNDER_AIRDROP = 100_000_000_000_000n; // 100 000 SOL to S1, the funder of requestAirdrop
const MAX_AIRDROP = 1_000_000_000_000n; // 1000 SOL per requestAirdrop
const MAX_BODY = 1 << 20;
const MAX_BATCH = 100;
const MAX_WIRE = 1232; // a transaction's packet limit
const MAX_DELAY_MS = 120_000;
const BLOCKHASH_SLOTS = 150n;
const U64_MAX = (1n << 64n) - 1n;

/** The test accounts, seed byte = n (the same table as the Rust side's `SVM_ACCOUNTS`). */
const ACCOUNTS = [
  { seed: 1, role: "mint authority and funder" },
  { seed: 2, role: "payer" },
  { seed: 3, role: "TypeScript facilitator fee payer" },
  { seed: 4, role: "merchant (payTo)" },
  { seed: 5, role: "Rust facilitator fee payer" },
  { seed: 6, role: "second payer" },
];
const PAYER_SEEDS = new Set([2, 6]);

// Names of LiteSVM's field-less transaction and instruction errors, by their numeric value (the
// order of solana-transaction-error's enums), for the JSON the RPC answers.
const TX_ERRORS = (
  "AccountInUse AccountLoadedTwice AccountNotFound ProgramAccountNotFound InsufficientFundsForFee " +
  "InvalidAccountForFee AlreadyProcessed BlockhashNotFound CallChainTooDeep MissingSignatureForFee " +
  "InvalidAccountIndex SignatureFailure InvalidProgramForExecution SanitizeFailure ClusterMaintenance " +
  "AccountBorrowOutstanding WouldExceedMaxBlockCostLimit UnsupportedVersion InvalidWritableAccount " +
  "WouldExceedMaxAccountCostLimit WouldExceedAccountDataBlockLimit TooManyAccountLocks " +
  "AddressLookupTableNotFound InvalidAddressLookupTableOwner InvalidAddressLookupTableData " +
  "InvalidAddressLookupTableIndex InvalidRentPayingAccount WouldExceedMaxVoteCostLimit " +
  "WouldExceedAccountDataTotalLimit MaxLoadedAccountsDataSizeExceeded ResanitizationNeeded " +
  "InvalidLoadedAccountsDataSizeLimit UnbalancedTransaction ProgramCacheHitMaxLimit CommitCancelled"
).split(" ");
const INSTRUCTION_ERRORS = (
  "GenericError InvalidArgument InvalidInstructionData InvalidAccountData AccountDataTooSmall " +
  "InsufficientFunds IncorrectProgramId MissingRequiredSignature AccountAlreadyInitialized " +
  "UninitializedAccount UnbalancedInstruction ModifiedProgramId ExternalAccountLamportSpend " +
  "ExternalAccountDataModified ReadonlyLamportChange ReadonlyDataModified DuplicateAccountIndex " +
  "ExecutableModified RentEpochModified NotEnoughAccountKeys AccountDataSizeChanged " +
  "AccountNotExecutable AccountBorrowFailed AccountBorrowOutstanding DuplicateAccountOutOfSync " +
  "InvalidError ExecutableDataModified ExecutableLamportChange ExecutableAccountNotRentExempt " +
  "UnsupportedProgramId CallDepth MissingAccount ReentrancyNotAllowed MaxSeedLengthExceeded " +
  "InvalidSeeds InvalidRealloc ComputationalBudgetExceeded PrivilegeEscalation " +
  "ProgramEnvironmentSetupFailure ProgramFailedToComplete ProgramFailedToCompile Immutable " +
  "IncorrectAuthority AccountNotRentExempt InvalidAccountOwner ArithmeticOverflow UnsupportedSysvar " +
  "IllegalOwner MaxAccountsDataAllocationsExceeded MaxAccountsExceeded " +
  "MaxInstructionTraceLengthExceeded BuiltinProgramsMustConsumeComputeUnits BorshIoError"
).split(" ");

/** A JSON-RPC error answer. */
class RpcError extends Error {
  constructor(code, message, data) {
    super(message);
    this.code = code;
    this.data = data;
  }
}
const invalidParams = (message) => new RpcError(-32602, `Invalid params: ${message}`);

const b58 = kit.getBase58Decoder(); // bytes → base58 text
const b58bytes = kit.getBase58Encoder(); // base58 text → bytes
const txDecoder = kit.getTransactionDecoder();

/** A transaction error of LiteSVM as a validator writes it in JSON. */
function errorJson(err) {
  if (typeof err === "number") return TX_ERRORS[err] ?? `TransactionError(${err})`;
  const name = err?.constructor?.name;
  if (name === "TransactionErrorInstructionError") {
    const inner = err.err();
    let json;
    if (typeof inner === "number") json = INSTRUCTION_ERRORS[inner] ?? `InstructionError(${inner})`;
    else if (inner?.constructor?.name === "InstructionErrorCustom") json = { Custom: inner.code };
    else json = { BorshIoError: String(inner?.msg ?? inner) };
    return { InstructionError: [err.index, json] };
  }
  if (name === "TransactionErrorDuplicateInstruction") return { DuplicateInstruction: err.index };
  if (name === "TransactionErrorInsufficientFundsForRent") {
    return { InsufficientFundsForRent: { account_index: err.accountIndex } };
  }
  if (name === "TransactionErrorProgramExecutionTemporarilyRestricted") {
    return { ProgramExecutionTemporarilyRestricted: { account_index: err.accountIndex } };
  }
  return String(err);
}

/** The chain: LiteSVM, the record of landed transactions, and the send fault switches. */
class Chain {
  constructor(cluster) {
    this.cluster = cluster;
    this.svm = new LiteSVM();
    this.blockhashSlot = this.slot();
    this.landed = new Map(); // signature → {slot, err}
    this.sendDelayMs = 0;
    this.dropSends = 0;
    this.holdSends = 0;
    this.held = []; // [{signature, transaction}]
    this.sequence = 0;
  }

  slot() {
    return this.svm.getClock().slot;
  }

  context() {
    return { apiVersion: "2.2.0", slot: this.slot() };
  }

  /** Runs a decoded transaction through LiteSVM and records it when it lands. */
  execute(transaction, signature) {
    let result;
    try {
      result = this.svm.sendTransaction(transaction);
    } catch (e) {
      // The wrapper refuses a transaction with an empty signature slot before the runtime sees it.
      return { landed: false, err: "SignatureFailure", detail: String(e?.message ?? e) };
    }
    if (!(result instanceof FailedTransactionMetadata)) {
      this.landed.set(signature, { slot: this.slot(), err: null });
      return { landed: true, err: null };
    }
    const err = errorJson(result.err());
    if (err === "AlreadyProcessed" && this.landed.has(signature)) {
      return { landed: true, err: this.landed.get(signature).err };
    }
    // A transaction that failed in an instruction still lands (its fee is charged): LiteSVM keeps
    // it in its history. One refused before execution is not there.
    if (this.svm.getTransaction(signature) !== null) {
      this.landed.set(signature, { slot: this.slot(), err });
      return { landed: true, err };
    }
    return { landed: false, err, detail: result.toString() };
  }

  /** Signs `instructions` with S1 as fee payer over the latest blockhash and lands them. */
  async land(authority, instructions, what) {
    const message = kit.pipe(
      kit.createTransactionMessage({ version: 0 }),
      (m) => kit.setTransactionMessageFeePayerSigner(authority, m),
      (m) => kit.setTransactionMessageLifetimeUsingBlockhash(this.lifetime(), m),
      (m) => kit.appendTransactionMessageInstructions(instructions, m),
    );
    const transaction = await kit.signTransactionMessageWithSigners(message);
    const signature = kit.getSignatureFromTransaction(transaction);
    const outcome = this.execute(transaction, signature);
    if (!outcome.landed || outcome.err !== null) {
      throw new RpcError(-32603, `${what} failed: ${JSON.stringify(outcome.err)} ${outcome.detail ?? ""}`);
    }
    return signature;
  }

  lifetime() {
    return {
      blockhash: this.svm.latestBlockhash(),
      lastValidBlockHeight: this.blockhashSlot + BLOCKHASH_SLOTS,
    };
  }

  /** Plants a USDC mint (6 decimals, authority S1, no freeze authority) at `address`. */
  plantMint(address, authority) {
    const data = token.getMintEncoder().encode({
      mintAuthority: kit.some(authority),
      supply: 0n,
      decimals: DECIMALS,
      isInitialized: true,
      freezeAuthority: kit.none(),
    });
    this.svm.setAccount({
      address,
      lamports: this.svm.minimumBalanceForRentExemption(BigInt(data.length)),
      data: Uint8Array.from(data),
      programAddress: token.TOKEN_PROGRAM_ADDRESS,
      executable: false,
      space: BigInt(data.length),
    });
  }

  /** Creates `owner`'s token account of `mint` if needed and mints `amount` to it, as S1. */
  async mint(authority, owner, mint, amount) {
    const ata = await associatedTokenAccount(owner, mint);
    const instructions = [
      token.getCreateAssociatedTokenIdempotentInstruction({ payer: authority, ata, owner, mint }),
    ];
    if (amount > 0n) {
      instructions.push(token.getMintToInstruction({ mint, token: ata, mintAuthority: authority, amount }));
    }
    instructions.push(this.uniqueMemo("mint"));
    const signature = await this.land(authority, instructions, `mint ${amount} to ${owner}`);
    return { signature, ata };
  }

  /** Sends `lamports` from the funder S1 to `address` in a real System transfer. */
  async airdrop(funder, address, lamports) {
    const data = new Uint8Array(12);
    const view = new DataView(data.buffer);
    view.setUint32(0, 2, true); // System program: Transfer
    view.setBigUint64(4, lamports, true);
    const transfer = {
      programAddress: SYSTEM_PROGRAM,
      accounts: [
        { address: funder.address, role: kit.AccountRole.WRITABLE_SIGNER, signer: funder },
        { address, role: kit.AccountRole.WRITABLE },
      ],
      data,
    };
    return this.land(funder, [transfer, this.uniqueMemo("airdrop")], `airdrop of ${lamports} to ${address}`);
  }

  /** A memo instruction that makes each of the test bed's own transactions unique: two equal ones
   * over one blockhash would be one transaction, refused the second time as already processed. */
  uniqueMemo(what) {
    this.sequence += 1;
    return { programAddress: MEMO_PROGRAM, data: new TextEncoder().encode(`testbed ${what} ${this.sequence}`) };
  }

  /** The token amount of a token account, or 0 when it does not exist. */
  tokenAmount(ata) {
    const account = this.svm.getAccount(ata);
    if (!account.exists) return 0n;
    return token.getTokenDecoder().decode(account.data).amount;
  }
}

async function associatedTokenAccount(owner, mint) {
  const [ata] = await token.findAssociatedTokenPda({ mint, owner, tokenProgram: token.TOKEN_PROGRAM_ADDRESS });
  return ata;
}

/** Builds the chain and funds the test accounts. */
async function setUp(cluster) {
  const chain = new Chain(cluster);
  const accounts = [];
  for (const { seed, role } of ACCOUNTS) {
    const bytes = new Uint8Array(32).fill(seed);
    const signer = await kit.createKeyPairSignerFromPrivateKeyBytes(bytes, true);
    const publicKey = b58bytes.encode(signer.address);
    const secretKey = b58.decode(Uint8Array.from([...bytes, ...publicKey]));
    accounts.push({ name: `S${seed}`, seed, address: signer.address, secretKey, role, signer, atas: {} });
  }
  const authority = accounts[0].signer;
  for (const account of accounts) {
    const airdrop = chain.svm.airdrop(account.address, account.seed === 1 ? FUNDER_AIRDROP : AIRDROP);
    if (!airdrop || airdrop instanceof FailedTransactionMetadata) {
      throw new Error(`airdrop to ${account.address} failed: ${airdrop}`);
    }
  }
  for (const [name, mint] of Object.entries(MINTS)) {
    chain.plantMint(mint, authority.address);
    for (const account of accounts) {
      const amount = PAYER_SEEDS.has(account.seed) ? PAYER_MINT : 0n;
      account.atas[name] = (await chain.mint(authority, account.address, mint, amount)).ata;
    }
  }
  return { chain, accounts, authority };
}

// ---- parameters -----------------------------------------------------------------------------

function param(params, index, name, { optional = false } = {}) {
  const value = params[index];
  if (value === undefined || value === null) {
    if (optional) return undefined;
    throw invalidParams(`missing parameter ${index} (${name})`);
  }
  return value;
}

function addressParam(params, index, name, options) {
  const value = param(params, index, name, options);
  if (value === undefined) return undefined;
  if (typeof value !== "string" || !kit.isAddress(value)) {
    throw invalidParams(`${name} must be a base58 address of 32 bytes`);
  }
  return value;
}

function configParam(params, index) {
  const value = params[index];
  if (value === undefined || value === null) return {};
  if (typeof value !== "object" || Array.isArray(value)) {
    throw invalidParams(`parameter ${index} must be a configuration object`);
  }
  return value;
}

function integerParam(value, name, max) {
  let n;
  if (typeof value === "number" && Number.isSafeInteger(value)) n = BigInt(value);
  else if (typeof value === "string" && /^[0-9]{1,20}$/.test(value)) n = BigInt(value);
  else throw invalidParams(`${name} must be a non-negative integer (a number or a decimal string)`);
  if (n < 0n || n > max) throw invalidParams(`${name} must be between 0 and ${max}`);
  return n;
}

/** Decodes a wire transaction given as base64 or base58 (`encoding`). */
function transactionParam(params, config) {
  const text = param(params, 0, "transaction");
  if (typeof text !== "string") throw invalidParams("the transaction must be a string");
  const encoding = config.encoding ?? "base58";
  let bytes;
  if (encoding === "base64") {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) throw invalidParams("the transaction is not base64");
    bytes = Buffer.from(text, "base64");
  } else if (encoding === "base58") {
    if (text.length > 2 * MAX_WIRE || !/^[1-9A-HJ-NP-Za-km-z]*$/.test(text)) {
      throw invalidParams("the transaction is not base58");
    }
    bytes = b58bytes.encode(text);
  } else {
    throw invalidParams(`unsupported encoding ${JSON.stringify(encoding)}: use base64 or base58`);
  }
  if (bytes.length > MAX_WIRE) {
    throw invalidParams(`transaction too large: ${bytes.length} bytes (max: ${MAX_WIRE})`);
  }
  let transaction;
  try {
    transaction = txDecoder.decode(bytes);
    kit.getCompiledTransactionMessageDecoder().decode(transaction.messageBytes);
  } catch (e) {
    throw invalidParams(`failed to deserialize the transaction: ${e?.message ?? e}`);
  }
  const first = Object.values(transaction.signatures)[0];
  const signature = first ? b58.decode(first) : b58.decode(new Uint8Array(64));
  return { transaction, signature };
}

// ---- methods ----------------------------------------------------------------------------------

function simulationValue(result) {
  const failed = result instanceof FailedTransactionMetadata;
  const meta = result.meta();
  return {
    err: failed ? errorJson(result.err()) : null,
    logs: meta.logs(),
    accounts: null,
    unitsConsumed: meta.computeUnitsConsumed(),
    returnData: null,
    innerInstructions: null,
  };
}

function simulate(chain, params) {
  const config = configParam(params, 1);
  const { transaction } = transactionParam(params, config);
  const sigVerify = config.sigVerify === true;
  const replace = config.replaceRecentBlockhash === true;
  if (sigVerify && replace) throw invalidParams("sigVerify may not be used with replaceRecentBlockhash");
  chain.svm.withSigverify(sigVerify).withBlockhashCheck(!replace);
  let result;
  try {
    result = chain.svm.simulateTransaction(transaction);
  } catch (e) {
    if (sigVerify) throw new RpcError(-32003, "Transaction signature verification failure");
    throw invalidParams(`the transaction cannot be simulated: ${e?.message ?? e}`);
  } finally {
    chain.svm.withSigverify(true).withBlockhashCheck(true);
  }
  const value = simulationValue(result);
  if (replace) value.replacementBlockhash = chain.lifetime();
  return { context: chain.context(), value };
}

async function send(chain, params) {
  const config = configParam(params, 1);
  const { transaction, signature } = transactionParam(params, config);
  if (chain.dropSends > 0) {
    chain.dropSends -= 1;
    log(`dropped ${signature}`);
    return signature;
  }
  if (chain.holdSends > 0) {
    chain.holdSends -= 1;
    chain.held.push({ signature, transaction });
    log(`holding ${signature}`);
    return signature;
  }
  if (config.skipPreflight !== true && !chain.landed.has(signature)) {
    // A validator's preflight: a transaction that would fail is refused before it is sent.
    preflight(chain, transaction);
  }
  const outcome = chain.execute(transaction, signature);
  if (chain.sendDelayMs > 0) await new Promise((done) => setTimeout(done, chain.sendDelayMs));
  if (!outcome.landed) {
    if (outcome.err === "SignatureFailure") {
      throw new RpcError(-32003, "Transaction signature verification failure", { err: outcome.err });
    }
    throw new RpcError(-32002, `Transaction cannot land: ${JSON.stringify(outcome.err)}`, { err: outcome.err });
  }
  return signature;
}

function preflight(chain, transaction) {
  let result;
  try {
    result = chain.svm.simulateTransaction(transaction);
  } catch {
    throw new RpcError(-32003, "Transaction signature verification failure", { err: "SignatureFailure" });
  }
  if (result instanceof FailedTransactionMetadata) {
    const err = errorJson(result.err());
    throw new RpcError(-32002, `Transaction simulation failed: ${JSON.stringify(err)}`, {
      err,
      logs: result.meta().logs(),
      unitsConsumed: result.meta().computeUnitsConsumed(),
    });
  }
}

function signatureStatuses(chain, params) {
  const signatures = param(params, 0, "signatures");
  if (!Array.isArray(signatures) || signatures.length > 256) {
    throw invalidParams("signatures must be an array of at most 256 base58 signatures");
  }
  configParam(params, 1);
  const value = signatures.map((signature, i) => {
    if (typeof signature !== "string" || !/^[1-9A-HJ-NP-Za-km-z]{64,88}$/.test(signature)) {
      throw invalidParams(`signatures[${i}] is not a base58 signature`);
    }
    const landed = chain.landed.get(signature);
    if (!landed) return null;
    return {
      slot: landed.slot,
      confirmations: null,
      err: landed.err,
      status: landed.err === null ? { Ok: null } : { Err: landed.err },
      confirmationStatus: "finalized",
    };
  });
  return { context: chain.context(), value };
}

function accountInfo(chain, params) {
  const address = addressParam(params, 0, "address");
  const config = configParam(params, 1);
  const encoding = config.encoding ?? "base64";
  if (encoding !== "base64") {
    throw invalidParams(`unsupported encoding ${JSON.stringify(encoding)}: the test bed serves base64`);
  }
  const account = chain.svm.getAccount(address);
  if (!account.exists) return { context: chain.context(), value: null };
  return {
    context: chain.context(),
    value: {
      data: [Buffer.from(account.data).toString("base64"), "base64"],
      executable: account.executable,
      lamports: account.lamports,
      owner: account.programAddress,
      rentEpoch: 0,
      space: account.space ?? BigInt(account.data.length),
    },
  };
}

function expireBlockhash(chain) {
  chain.svm.expireBlockhash();
  // Past the old blockhash's last valid block height, as time would have moved on a cluster.
  chain.svm.warpToSlot(chain.slot() + BLOCKHASH_SLOTS + 1n);
  chain.blockhashSlot = chain.slot();
  return chain.lifetime();
}

function releaseHeld(chain) {
  const held = chain.held.splice(0);
  return held.map(({ signature, transaction }) => {
    const outcome = chain.execute(transaction, signature);
    return { signature, landed: outcome.landed, err: outcome.err };
  });
}

/** The optional mint parameter at `index`: one of the planted mints, devnet USDC by default. */
function plantedMint(params, index) {
  const mint = addressParam(params, index, "mint", { optional: true }) ?? MINTS.devnet;
  if (!Object.values(MINTS).includes(mint)) {
    throw invalidParams(`mint must be one of the planted mints ${Object.values(MINTS).join(", ")}`);
  }
  return mint;
}

function countParam(params, name, max) {
  return Number(integerParam(param(params, 0, name), name, BigInt(max)));
}

function methods(bed) {
  const { chain } = bed;
  return {
    getAccountInfo: (params) => accountInfo(chain, params),
    getBalance: (params) => {
      const address = addressParam(params, 0, "address");
      configParam(params, 1);
      return { context: chain.context(), value: chain.svm.getBalance(address) ?? 0n };
    },
    getLatestBlockhash: (params) => {
      configParam(params, 0);
      return { context: chain.context(), value: chain.lifetime() };
    },
    isBlockhashValid: (params) => {
      const blockhash = addressParam(params, 0, "blockhash");
      configParam(params, 1);
      return { context: chain.context(), value: blockhash === chain.svm.latestBlockhash() };
    },
    getMinimumBalanceForRentExemption: (params) =>
      chain.svm.minimumBalanceForRentExemption(integerParam(param(params, 0, "length"), "length", 10n * 1024n * 1024n)),
    getSlot: () => chain.slot(),
    getBlockHeight: () => chain.slot(),
    getGenesisHash: () => GENESIS[chain.cluster],
    getVersion: () => ({ "solana-core": "2.2.0", "feature-set": 0 }),
    getHealth: () => "ok",
    simulateTransaction: (params) => simulate(chain, params),
    sendTransaction: (params) => send(chain, params),
    getSignatureStatuses: (params) => signatureStatuses(chain, params),
    requestAirdrop: (params) => {
      const address = addressParam(params, 0, "address");
      const lamports = integerParam(param(params, 1, "lamports"), "lamports", MAX_AIRDROP);
      return chain.airdrop(bed.authority, address, lamports);
    },
    testbed_mint: async (params) => {
      const owner = addressParam(params, 0, "owner");
      const amount = integerParam(param(params, 1, "amount"), "amount", U64_MAX);
      const mint = plantedMint(params, 2);
      const { signature, ata } = await chain.mint(bed.authority, owner, mint, amount);
      return { signature, ata, amount: chain.tokenAmount(ata).toString() };
    },
    testbed_tokenAccount: async (params) => {
      const owner = addressParam(params, 0, "owner");
      const mint = plantedMint(params, 1);
      return associatedTokenAccount(owner, mint);
    },
    testbed_expireBlockhash: () => expireBlockhash(chain),
    testbed_setSendDelay: (params) => {
      chain.sendDelayMs = countParam(params, "ms", MAX_DELAY_MS);
      return chain.sendDelayMs;
    },
    testbed_dropSends: (params) => {
      chain.dropSends = countParam(params, "n", 1_000_000);
      return chain.dropSends;
    },
    testbed_holdSends: (params) => {
      chain.holdSends = countParam(params, "n", 1_000_000);
      return chain.holdSends;
    },
    testbed_releaseHeld: () => releaseHeld(chain),
  };
}

// ---- JSON-RPC over HTTP -------------------------------------------------------------------------

function log(line) {
  process.stderr.write(`${new Date().toISOString()} ${line}\n`);
}

/** JSON with bigints as plain numbers (every bigint served fits a double exactly, or is a u64 amount
 * given as a string by its method). */
function toJson(value) {
  return JSON.stringify(value, (_key, v) => (typeof v === "bigint" ? Number(v) : v));
}

function errorAnswer(id, error) {
  const body = { code: error.code, message: error.message };
  if (error.data !== undefined) body.data = error.data;
  return { jsonrpc: "2.0", id, error: body };
}

async function call(table, request) {
  if (typeof request !== "object" || request === null || Array.isArray(request)) {
    return errorAnswer(null, new RpcError(-32600, "Invalid request: not a JSON-RPC request object"));
  }
  const id = ["string", "number"].includes(typeof request.id) ? request.id : null;
  if (request.jsonrpc !== "2.0" || typeof request.method !== "string") {
    return errorAnswer(id, new RpcError(-32600, 'Invalid request: needs "jsonrpc": "2.0" and a method name'));
  }
  const params = request.params ?? [];
  if (!Array.isArray(params)) {
    return errorAnswer(id, invalidParams("params must be an array"));
  }
  const method = Object.hasOwn(table, request.method) ? table[request.method] : undefined;
  if (!method) return errorAnswer(id, new RpcError(-32601, `Method not found: ${request.method}`));
  const started = Date.now();
  try {
    const result = await method(params);
    log(`${request.method} ok ${Date.now() - started} ms`);
    return { jsonrpc: "2.0", id, result };
  } catch (e) {
    const error = e instanceof RpcError ? e : new RpcError(-32603, `Internal error: ${e?.message ?? e}`);
    log(`${request.method} error ${error.code} ${error.message}`);
    return errorAnswer(id, error);
  }
}

function reply(response, status, body) {
  const text = toJson(body);
  response.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  response.end(text);
}

async function handle(table, request, response) {
  if (request.method !== "POST") {
    return reply(response, 405, errorAnswer(null, new RpcError(-32600, "Invalid request: use POST")));
  }
  const parts = [];
  let size = 0;
  for await (const part of request) {
    size += part.length;
    if (size > MAX_BODY) {
      response.setHeader("connection", "close");
      reply(response, 413, errorAnswer(null, new RpcError(-32600, `Invalid request: body over ${MAX_BODY} bytes`)));
      request.destroy();
      return;
    }
    parts.push(part);
  }
  let body;
  try {
    body = JSON.parse(Buffer.concat(parts).toString("utf8"));
  } catch {
    return reply(response, 200, errorAnswer(null, new RpcError(-32700, "Parse error: the body is not JSON")));
  }
  if (!Array.isArray(body)) return reply(response, 200, await call(table, body));
  if (body.length === 0 || body.length > MAX_BATCH) {
    const why = `Invalid request: a batch holds 1 to ${MAX_BATCH} requests`;
    return reply(response, 200, errorAnswer(null, new RpcError(-32600, why)));
  }
  const answers = [];
  for (const one of body) answers.push(await call(table, one)); // in order: the chain is sequential
  return reply(response, 200, answers);
}

function parseArgs(argv) {
  let port = 0;
  let cluster = "devnet";
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--port") port = Number(argv[++i]);
    else if (arg === "--cluster") cluster = argv[++i];
    else if (/^[0-9]+$/.test(arg)) port = Number(arg);
    else throw new Error(`unknown argument ${arg} (usage: rpc.mjs [--port N | N] [--cluster devnet|mainnet])`);
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bad port ${port}`);
  if (!Object.hasOwn(GENESIS, cluster)) throw new Error(`unknown cluster ${cluster}: devnet or mainnet`);
  return { port, cluster };
}

async function main() {
  const { port, cluster } = parseArgs(process.argv.slice(2));
  const bed = await setUp(cluster);
  const table = methods(bed);
  const server = http.createServer((request, response) => {
    handle(table, request, response).catch((e) => {
      log(`request failed: ${e?.stack ?? e}`);
      if (!response.headersSent) reply(response, 500, errorAnswer(null, new RpcError(-32603, "Internal error")));
      else response.destroy();
    });
  });
  server.keepAliveTimeout = 60_000;
  server.on("clientError", (_e, socket) => socket.destroy());
  await new Promise((listening, failed) => {
    server.once("error", failed);
    server.listen(port, "127.0.0.1", listening);
  });
  const ready = {
    rpc: `http://127.0.0.1:${server.address().port}`,
    cluster,
    genesisHash: GENESIS[cluster],
    tokenProgram: token.TOKEN_PROGRAM_ADDRESS,
    decimals: DECIMALS,
    mints: MINTS,
    payerMint: PAYER_MINT.toString(),
    accounts: bed.accounts.map(({ name, seed, address, secretKey, role, atas }) => ({
      name,
      seed,
      address,
      secretKey,
      role,
      atas,
    })),
  };
  process.stdout.write(`${JSON.stringify(ready)}\n`);
  log(`listening on ${ready.rpc}`);
  process.stdin.on("end", () => process.exit(0));
  process.stdin.on("close", () => process.exit(0));
  process.stdin.resume();
}

main().catch((e) => {
  log(`rpc.mjs failed: ${e?.stack ?? e}`);
  process.exit(1);
});
