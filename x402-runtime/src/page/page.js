"use strict";
// The pay page of an x402 route: signs the offer's EIP-3009 authorization with the person's
// wallet and resends the request with it. A payment, once signed, is only ever resent: while its
// outcome is unknown the page sends the same PAYMENT-SIGNATURE again and never asks for another.
(() => {
  const byId = (id) => document.getElementById(id);
  const button = byId("pay");
  const status = byId("status");
  const required = fromBase64(document.querySelector('meta[name="x402-payment-required"]').content);
  const DOMAIN = [
    { name: "name", type: "string" },
    { name: "version", type: "string" },
    { name: "chainId", type: "uint256" },
    { name: "verifyingContract", type: "address" },
  ];
  const TRANSFER = [
    { name: "from", type: "address" },
    { name: "to", type: "address" },
    { name: "value", type: "uint256" },
    { name: "validAfter", type: "uint256" },
    { name: "validBefore", type: "uint256" },
    { name: "nonce", type: "bytes32" },
  ];
  const RESENDS = 12;
  let signed = null; // {header, offer, chain}: the payment in flight
  let busy = false;
  let done = false;

  /** What the person is told; `keep` says whether the signed payment may still be resent. */
  class Failure extends Error {
    constructor(message, keep) {
      super(message);
      this.keep = Boolean(keep);
    }
  }

  function fromBase64(text) {
    const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  }

  function toBase64(value) {
    let binary = "";
    for (const byte of new TextEncoder().encode(JSON.stringify(value))) {
      binary += String.fromCharCode(byte);
    }
    return btoa(binary);
  }

  function say(text, kind) {
    status.textContent = text;
    status.className = kind || "";
  }

  const errorCode = (e) => (e && (e.code ?? (e.data && e.data.originalError && e.data.originalError.code))) || 0;
  const why = (e) => (e && e.message) || String(e);
  const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const short = (address) => address.slice(0, 6) + "…" + address.slice(-4);

  function chosen() {
    const input = document.querySelector('input[name="offer"]:checked');
    if (!input || input.disabled) throw new Failure("Choose how to pay.");
    return { offer: required.accepts[Number(input.value)], chain: input.dataset };
  }

  function lockOffers(locked) {
    for (const input of document.querySelectorAll('input[name="offer"]')) {
      if (!input.dataset.unpayable) input.disabled = locked;
    }
  }

  /** Wallets announced through EIP-6963, else the injected `window.ethereum`. */
  function wallets() {
    return new Promise((resolve) => {
      const found = [];
      const announced = (event) => {
        const detail = event.detail;
        if (detail && detail.provider && detail.info && !found.some((w) => w.info.uuid === detail.info.uuid)) {
          found.push(detail);
        }
      };
      window.addEventListener("eip6963:announceProvider", announced);
      window.dispatchEvent(new Event("eip6963:requestProvider"));
      setTimeout(() => {
        window.removeEventListener("eip6963:announceProvider", announced);
        if (!found.length && window.ethereum) {
          found.push({ info: { uuid: "injected", name: "Browser wallet" }, provider: window.ethereum });
        }
        resolve(found);
      }, 250);
    });
  }

  async function pickWallet() {
    const found = await wallets();
    if (!found.length) {
      throw new Failure("No wallet found in this browser. Install a wallet extension, then reload this page.");
    }
    if (found.length === 1) return found[0].provider;
    const box = byId("wallets");
    box.replaceChildren();
    box.hidden = false;
    say("Choose a wallet.");
    return new Promise((resolve) => {
      for (const wallet of found) {
        const choice = document.createElement("button");
        choice.type = "button";
        choice.className = "wallet";
        if (typeof wallet.info.icon === "string" && wallet.info.icon.startsWith("data:image/")) {
          const icon = document.createElement("img");
          icon.src = wallet.info.icon;
          icon.alt = "";
          choice.append(icon);
        }
        choice.append(document.createTextNode(wallet.info.name || "Wallet"));
        choice.addEventListener("click", () => {
          box.hidden = true;
          resolve(wallet.provider);
        });
        box.append(choice);
      }
    });
  }

  async function connect(provider) {
    say("Connecting to your wallet…");
    try {
      const accounts = await provider.request({ method: "eth_requestAccounts" });
      if (!accounts || !accounts.length) throw new Error("the wallet shared no account");
      return accounts[0];
    } catch (e) {
      if (errorCode(e) === 4001) throw new Failure("You declined to connect your wallet. Nothing was paid.");
      throw new Failure("Could not connect to your wallet: " + why(e));
    }
  }

  /** Switches the wallet to the offer's chain, adding the chain where the wallet lacks it. */
  async function onChain(provider, chain) {
    const wanted = Number(chain.chain);
    if (Number(await provider.request({ method: "eth_chainId" })) === wanted) return;
    const chainId = "0x" + wanted.toString(16);
    const wrong = () => new Failure(`Your wallet is on another network. Switch it to ${chain.chainName} and pay again. Nothing was paid.`);
    say(`Switching your wallet to ${chain.chainName}…`);
    try {
      await provider.request({ method: "wallet_switchEthereumChain", params: [{ chainId }] });
    } catch (e) {
      if (errorCode(e) !== 4902) throw wrong();
      if (!chain.rpc) {
        throw new Failure(`Your wallet does not know ${chain.chainName} (chain id ${wanted}): add it to your wallet, then pay again.`);
      }
      const added = { chainId, chainName: chain.chainName, rpcUrls: [chain.rpc], nativeCurrency: { name: chain.gas, symbol: chain.gas, decimals: 18 } };
      if (chain.explorer) added.blockExplorerUrls = [chain.explorer];
      try {
        await provider.request({ method: "wallet_addEthereumChain", params: [added] });
      } catch (_) {
        throw wrong();
      }
    }
    if (Number(await provider.request({ method: "eth_chainId" })) !== wanted) throw wrong();
  }

  /** Refuses before signing when the wallet can read the token balance and it is too low. */
  async function enough(provider, offer, chain, from) {
    const data = "0x70a08231" + from.slice(2).toLowerCase().padStart(64, "0");
    let answer;
    try {
      answer = await provider.request({ method: "eth_call", params: [{ to: offer.asset, data }, "latest"] });
    } catch (_) {
      return; // a wallet that cannot read balances: the server checks
    }
    if (typeof answer !== "string" || !/^0x[0-9a-fA-F]{1,64}$/.test(answer)) return;
    const balance = BigInt(answer);
    if (balance < BigInt(offer.amount)) {
      const held = units(balance, Number(chain.decimals));
      throw new Failure(`Not enough ${chain.token}: this costs ${chain.price} and ${short(from)} holds ${held} ${chain.token} on ${chain.chainName}. Nothing was paid.`);
    }
  }

  function units(atomic, decimals) {
    const text = atomic.toString().padStart(decimals + 1, "0");
    const whole = text.slice(0, text.length - decimals);
    const fraction = text.slice(text.length - decimals).replace(/0+$/, "");
    return fraction ? `${whole}.${fraction}` : whole;
  }

  async function sign(provider, offer, chain, from) {
    const now = Math.floor(Date.now() / 1000);
    const nonce = "0x" + Array.from(crypto.getRandomValues(new Uint8Array(32)), (b) => b.toString(16).padStart(2, "0")).join("");
    const authorization = {
      from,
      to: offer.payTo,
      value: offer.amount,
      validAfter: String(now - 600),
      validBefore: String(now + offer.maxTimeoutSeconds),
      nonce,
    };
    const typed = {
      types: { EIP712Domain: DOMAIN, TransferWithAuthorization: TRANSFER },
      primaryType: "TransferWithAuthorization",
      domain: { name: offer.extra.name, version: offer.extra.version, chainId: Number(chain.chain), verifyingContract: offer.asset },
      message: authorization,
    };
    say(`Confirm the payment of ${chain.price} in your wallet…`);
    let signature;
    try {
      signature = await provider.request({ method: "eth_signTypedData_v4", params: [from, JSON.stringify(typed)] });
    } catch (e) {
      if (errorCode(e) === 4001) throw new Failure("You rejected the signature. Nothing was paid.");
      throw new Failure("Your wallet could not sign the payment: " + why(e) + ". Nothing was paid.");
    }
    const payment = { x402Version: 2, resource: required.resource, accepted: offer, payload: { signature, authorization } };
    return toBase64(payment);
  }

  function receiptOf(response) {
    const header = response.headers.get("PAYMENT-RESPONSE");
    if (!header) return null;
    try {
      return fromBase64(header);
    } catch (_) {
      return null;
    }
  }

  function retryAfter(response) {
    const seconds = Number(response.headers.get("Retry-After"));
    return Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds, 30) * 1000 : 5000;
  }

  /** Sends the signed payment, and the same one again while its outcome is not known. */
  async function send(payment) {
    for (let attempt = 0; attempt < RESENDS; attempt++) {
      say(attempt ? "The payment is still settling: sending the same payment again…" : "Paying…");
      let response;
      try {
        response = await fetch(location.href, { headers: { "PAYMENT-SIGNATURE": payment.header, Accept: "application/json, */*;q=0.8" }, cache: "no-store" });
      } catch (_) {
        throw new Failure("The server could not be reached. Press the button to send the same payment again; you will not pay twice.", true);
      }
      if (response.ok) return show(response, payment);
      const body = await response.json().catch(() => ({}));
      const receipt = receiptOf(response);
      const code = body.error || (receipt && receipt.errorReason) || "";
      if (response.status === 503 || code === "payment_in_progress") {
        await wait(retryAfter(response));
        continue;
      }
      if (code === "payment_already_settled") return settledUndelivered(body.transaction, payment);
      throw refused(response.status, code, body.message, payment);
    }
    throw new Failure("The payment is still settling. Press the button later to send the same payment again; you will not pay twice.", true);
  }

  function refused(statusCode, code, message, payment) {
    if (statusCode !== 402) {
      return new Failure(`The server could not take the payment now (${code || statusCode}). Nothing was charged; press the button to send the same payment again.`, true);
    }
    if (code === "insufficient_funds" || /insufficient/.test(code)) {
      return new Failure(`Not enough ${payment.chain.token} to pay ${payment.chain.price}. Nothing was paid.`);
    }
    if (/valid_before|valid_after|expired/.test(code)) {
      return new Failure("The payment's authorization expired before it was settled (is this computer's clock right?). Nothing was paid; press the button to sign a new one.");
    }
    const detail = message ? `: ${message}` : "";
    return new Failure(`The payment was refused (${code || "no reason given"})${detail}. Nothing was paid.`);
  }

  async function show(response, payment) {
    const type = (response.headers.get("content-type") || "").toLowerCase();
    const box = byId("content");
    box.replaceChildren();
    if (type.includes("json") || type.startsWith("text/")) {
      const pre = document.createElement("pre");
      const text = await response.text();
      try {
        pre.textContent = type.includes("json") ? JSON.stringify(JSON.parse(text), null, 2) : text;
      } catch (_) {
        pre.textContent = text;
      }
      box.append(pre);
    } else if (type.startsWith("image/")) {
      const image = document.createElement("img");
      image.src = URL.createObjectURL(await response.blob());
      image.alt = "What you bought";
      box.append(image);
    } else {
      const blob = await response.blob();
      const link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = fileName(response);
      link.textContent = `Download ${link.download} (${blob.size} bytes)`;
      box.append(link);
    }
    showReceipt(receiptOf(response), payment);
    byId("result").hidden = false;
    done = true;
    button.textContent = "Paid";
    say(`Paid ${payment.chain.price}. Thank you!`, "ok");
  }

  /** The payment settled while its outcome was unknown: the server withheld the response then
   * and does not serve it twice, so the person keeps the transaction to show the seller. */
  function settledUndelivered(transaction, payment) {
    const note = document.createElement("p");
    note.textContent = "The response was not delivered while the payment was settling, and it is not served twice for one payment.";
    byId("content").replaceChildren(note);
    showReceipt({ transaction }, payment);
    byId("result").hidden = false;
    done = true;
    button.textContent = "Paid";
    say(`Your payment of ${payment.chain.price} settled. Keep the transaction below to show the seller.`, "warn");
  }

  function fileName(response) {
    const disposition = response.headers.get("content-disposition") || "";
    const named = /filename="?([^";]+)"?/i.exec(disposition);
    const last = location.pathname.split("/").filter(Boolean).pop();
    return (named && named[1]) || last || "download";
  }

  function showReceipt(receipt, payment) {
    const list = byId("receipt");
    list.replaceChildren();
    const row = (name, value) => {
      const term = document.createElement("dt");
      term.textContent = name;
      const item = document.createElement("dd");
      item.append(value);
      list.append(term, item);
    };
    row("Paid", payment.chain.price);
    row("Network", payment.chain.chainName);
    if (!receipt) return;
    if (receipt.payer) row("Payer", receipt.payer);
    const transaction = receipt.transaction || "";
    if (/^0x[0-9a-fA-F]{64}$/.test(transaction) && payment.chain.explorer) {
      const link = document.createElement("a");
      link.href = `${payment.chain.explorer}/tx/${transaction}`;
      link.rel = "noopener noreferrer";
      link.target = "_blank";
      link.id = "transaction";
      link.textContent = transaction;
      row("Transaction", link);
    } else if (transaction) {
      row("Transaction", transaction);
    }
  }

  async function pay() {
    if (busy || done) return;
    busy = true;
    button.disabled = true;
    try {
      if (!signed) {
        const { offer, chain } = chosen();
        const provider = await pickWallet();
        const from = await connect(provider);
        await onChain(provider, chain);
        await enough(provider, offer, chain, from);
        signed = { header: await sign(provider, offer, chain, from), offer, chain };
        lockOffers(true);
      }
      await send(signed);
    } catch (e) {
      const failure = e instanceof Failure ? e : new Failure("Something went wrong: " + why(e), Boolean(signed));
      if (!failure.keep) {
        signed = null;
        lockOffers(false);
      }
      say(failure.message, "error");
    } finally {
      busy = false;
      button.disabled = done;
      if (!done) button.textContent = signed ? "Send the same payment again" : "Pay with wallet";
    }
  }

  if (required.error === "price_depends_on_request") {
    button.disabled = true;
    say("The price of this resource depends on the request: open it with its parameters to see what it costs.");
  } else {
    button.addEventListener("click", pay);
  }
})();
