// The official TypeScript resource server (@x402/express) pricing GET /paid at $0.001 on Base
// Sepolia, and GET /metered at up to $0.01 (`upto`, settling ?units= atomic units), verified and
// settled by the facilitator at FACILITATOR_URL.
// usage: PORT=… FACILITATOR_URL=http://127.0.0.1:… PAY_TO=0x… node server.mjs
import express from "express";
import { paymentMiddleware, setSettlementOverrides, x402ResourceServer } from "@x402/express";
import { ExactEvmScheme } from "@x402/evm/exact/server";
import { UptoEvmScheme } from "@x402/evm/upto/server";
import { HTTPFacilitatorClient } from "@x402/core/server";

const port = Number(process.env.PORT);
const facilitator = new HTTPFacilitatorClient({ url: process.env.FACILITATOR_URL });
const server = new x402ResourceServer(facilitator)
  .register("eip155:84532", new ExactEvmScheme())
  .register("eip155:84532", new UptoEvmScheme());
const app = express();
app.use(
  paymentMiddleware(
    {
      "GET /paid": {
        accepts: { scheme: "exact", price: "$0.001", network: "eip155:84532", payTo: process.env.PAY_TO, maxTimeoutSeconds: 60 },
        description: "paid test resource",
        mimeType: "application/json",
      },
      "GET /metered": {
        accepts: { scheme: "upto", price: "$0.01", network: "eip155:84532", payTo: process.env.PAY_TO, maxTimeoutSeconds: 60 },
        description: "metered test resource",
        mimeType: "application/json",
      },
    },
    server,
  ),
);
app.get("/paid", (_req, res) => res.json({ paid: true }));
app.get("/metered", (req, res) => {
  setSettlementOverrides(res, { amount: String(req.query.units) });
  res.json({ used: Number(req.query.units) });
});
app.get("/health", (_req, res) => res.json({ ok: true }));
app.listen(port, "127.0.0.1", () => console.log(`listening 127.0.0.1:${port}`));
