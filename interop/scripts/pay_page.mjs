// Drives the pay page in Debian's Chromium (playwright-core, no browser download) with a test
// wallet: an EIP-1193 provider announced through EIP-6963 whose signatures come from anvil's
// dev accounts (eth_signTypedData_v4), so they are real. Usage:
//   node pay_page.mjs '<json plan>'
// plan: {rpc, shots, scenarios: [{name, url, account, chainId, knownChains, reject, clicks}]}
// Prints one JSON line: {scenarioName: result, ...}.
import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

const plan = JSON.parse(process.argv[2]);
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

// Runs in the page before its own script: the provider, and a record of CSP violations.
const INJECTED = `
  window.__violations = [];
  document.addEventListener("securitypolicyviolation", (e) => window.__violations.push(e.violatedDirective + " " + e.blockedURI));
  const provider = {
    isTestWallet: true,
    request: async ({ method, params }) => {
      const answer = await window.__x402Wallet(method, params || []);
      if (answer.error) {
        const error = new Error(answer.error.message);
        error.code = answer.error.code;
        throw error;
      }
      return answer.result;
    },
  };
  const info = Object.freeze({ uuid: "6e1b1c3a-0a9a-4a55-9f0e-7f0c2f1d5a11", name: "Test Wallet", icon: "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E", rdns: "org.x402.testwallet" });
  const announce = () => window.dispatchEvent(new CustomEvent("eip6963:announceProvider", { detail: Object.freeze({ info, provider }) }));
  window.addEventListener("eip6963:requestProvider", announce);
`;

async function rpc(method, params) {
  const response = await fetch(plan.rpc, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
    signal: AbortSignal.timeout(20000),
  });
  return response.json();
}

/** The wallet's side of one scenario: answers the page's requests, records them. */
function wallet(scenario) {
  const state = { chainId: scenario.chainId, known: new Set(scenario.knownChains), calls: [] };
  const fail = (code, message) => ({ error: { code, message } });
  state.handle = async (method, params) => {
    state.calls.push(method);
    switch (method) {
      case "eth_requestAccounts":
      case "eth_accounts":
        return { result: [scenario.account] };
      case "eth_chainId":
        return { result: "0x" + state.chainId.toString(16) };
      case "wallet_switchEthereumChain": {
        const wanted = Number(params[0].chainId);
        if (scenario.refuseSwitch) return fail(4001, "User rejected the request.");
        if (!state.known.has(wanted)) return fail(4902, "Unrecognized chain ID.");
        state.chainId = wanted;
        return { result: null };
      }
      case "wallet_addEthereumChain": {
        const added = params[0];
        state.added = added;
        state.known.add(Number(added.chainId));
        state.chainId = Number(added.chainId);
        return { result: null };
      }
      case "eth_signTypedData_v4": {
        if (scenario.reject) return fail(4001, "User rejected the request.");
        const answer = await rpc(method, [params[0], JSON.parse(params[1])]);
        return answer.error ? fail(answer.error.code, answer.error.message) : { result: answer.result };
      }
      case "eth_call": {
        const answer = await rpc(method, params);
        return answer.error ? fail(answer.error.code, answer.error.message) : { result: answer.result };
      }
      default:
        return fail(4200, `the test wallet does not support ${method}`);
    }
  };
  return state;
}

async function run(browser, scenario) {
  const context = await browser.newContext({ viewport: { width: 560, height: 820 }, deviceScaleFactor: 1 });
  const state = wallet(scenario);
  await context.exposeBinding("__x402Wallet", (_source, method, params) => state.handle(method, params));
  await context.addInitScript(INJECTED);
  const external = [];
  await context.route("**/*", (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === "127.0.0.1" || url.protocol === "data:" || url.protocol === "blob:") return route.continue();
    external.push(url.href);
    return route.abort();
  });
  const page = await context.newPage();
  const consoleErrors = [];
  const dialogs = [];
  let paidRequests = 0;
  const statusLogs = [];
  page.on("console", (message) => {
    if (message.type() !== "error") return;
    // Chromium logs every response with a 4xx or 5xx status as a failed load: for the page's
    // own URL these are the protocol's answers (the 402 the page comes with, 503 while a
    // settlement is pending, 409 once it is known), kept apart from the page's errors.
    const status = /^Failed to load resource: the server responded with a status of (\d+)/.exec(message.text());
    if (status && message.location().url === scenario.url) {
      statusLogs.push(Number(status[1]));
    } else {
      consoleErrors.push(`${message.text()} (${message.location().url})`);
    }
  });
  page.on("pageerror", (error) => consoleErrors.push(String(error)));
  page.on("dialog", (dialog) => {
    dialogs.push(dialog.message());
    dialog.dismiss();
  });
  page.on("request", (request) => {
    if (request.headers()["payment-signature"]) paidRequests += 1;
  });
  const response = await page.goto(scenario.url, { waitUntil: "load", timeout: 30000 });
  const headers = response.headers();
  const result = {
    status: response.status(),
    contentType: headers["content-type"] || "",
    csp: headers["content-security-policy"] || "",
    paymentRequired: Boolean(headers["payment-required"]),
    pageBytes: (await response.body()).length,
    title: await page.title(),
    description: await page.locator("#description").textContent().catch(() => null),
    descriptionHtml: await page.locator("#description").innerHTML().catch(() => null),
    scripts: await page.locator("script").count(),
    offers: await page.locator('input[name="offer"]').count(),
  };
  if (plan.shots) await page.screenshot({ path: `${plan.shots}/${scenario.name}-before.png` });
  if (plan.shots && scenario.card) await page.locator("main").screenshot({ path: `${plan.shots}/${scenario.name}-card-before.png` });
  for (let click = 0; click < (scenario.clicks ?? 1); click++) {
    if (click === 0) {
      if (scenario.pending) await rpc("evm_setAutomine", [false]);
      await page.click("#pay", { timeout: 10000 });
      if (scenario.pending) {
        // The settlement cannot be mined: its outcome stays unknown until the page has resent
        // the same payment at least once; then the block is mined.
        await page.waitForFunction(() => document.getElementById("status").textContent.includes("still settling"), null, { timeout: 90000 });
        result.resentWhilePending = true;
        await rpc("evm_mine", []);
        await rpc("evm_setAutomine", [true]);
      }
    } else {
      // Once paid the button is disabled; a script click must not pay again either.
      await page.evaluate(() => document.getElementById("pay").click());
      await page.waitForTimeout(1500);
    }
    await page.waitForFunction(
      () => !document.getElementById("result").hidden || ["error", "warn"].includes(document.getElementById("status").className),
      null,
      { timeout: 90000 },
    );
  }
  result.state = await page.evaluate(() => ({
    status: document.getElementById("status").textContent,
    kind: document.getElementById("status").className,
    paid: !document.getElementById("result").hidden,
    content: document.querySelector("#content pre")?.textContent ?? null,
    image: (() => {
      const image = document.querySelector("#content img");
      return image ? { src: image.src.slice(0, 5), width: image.naturalWidth } : null;
    })(),
    transaction: document.getElementById("transaction")?.textContent ?? null,
    explorer: document.getElementById("transaction")?.getAttribute("href") ?? null,
    button: { text: document.getElementById("pay").textContent, disabled: document.getElementById("pay").disabled },
    violations: window.__violations,
  }));
  if (plan.shots) await page.screenshot({ path: `${plan.shots}/${scenario.name}-after.png` });
  if (plan.shots && scenario.card) await page.locator("main").screenshot({ path: `${plan.shots}/${scenario.name}-card-after.png` });
  Object.assign(result, {
    walletCalls: state.calls,
    added: state.added ?? null,
    chainId: state.chainId,
    paidRequests,
    consoleErrors,
    statusLogs,
    dialogs,
    external,
  });
  await context.close();
  return result;
}

const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, timeout: 60000 });
const results = {};
try {
  if (plan.shots) mkdirSync(plan.shots, { recursive: true });
  for (const scenario of plan.scenarios) {
    const started = Date.now();
    try {
      results[scenario.name] = await run(browser, scenario);
    } catch (error) {
      results[scenario.name] = { failed: String(error && error.stack ? error.stack : error) };
    }
    results[scenario.name].ms = Date.now() - started;
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(results));
