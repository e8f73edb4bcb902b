// The official TypeScript resource server (@x402/express) pricing GET /paid at $0.01 in USDC on
// Solana devnet (`exact`), verified and settled by the facilitator at FACILITATOR_URL.
// usage: PORT=… FACILITATOR_URL=http://127.0.0.1:… PAY_TO=<base58 wallet> node server_svm.mjs
// PAY_TO is the merchant's wallet (owner), not a token account: the payment goes to its USDC
// associated token account, which must exist. Prints `listening 127.0.0.1:<port>` once it listens;
// GET /health answers 200 without payment.
import express from "express";
import { paymentMiddleware, x402ResourceServer } from "@x402/express";
import { HTTPFacilitatorClient } from "@x402/core/server";
import { ExactSvmScheme } from "@x402/svm/exact/server";
import { SOLANA_DEVNET_CAIP2 } from "@x402/svm";

const port = Number(process.env.PORT ?? 0);
const facilitator = new HTTPFacilitatorClient({ url: process.env.FACILITATOR_URL });
const server = new x402ResourceServer(facilitator).register(SOLANA_DEVNET_CAIP2, new ExactSvmScheme());
const app = express();
app.use(
  paymentMiddleware(
    {
      "GET /paid": {
        accepts: { scheme: "exact", price: "$0.01", network: SOLANA_DEVNET_CAIP2, payTo: process.env.PAY_TO, maxTimeoutSeconds: 60 },
        description: "paid test resource on Solana",
        mimeType: "application/json",
      },
    },
    server,
  ),
);
app.get("/paid", (_req, res) => res.json({ paid: true }));
app.get("/health", (_req, res) => res.json({ ok: true }));
const listener = app.listen(port, "127.0.0.1", () => console.log(`listening 127.0.0.1:${listener.address().port}`));
