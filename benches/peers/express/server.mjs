// The @x402/express peer of the load benchmark (benches/src/bin/load.rs, section "Peers" of
// BENCHMARKS.md): GET /weather?city=... for $0.001 (0.001 USDC) on Base Sepolia, paid to the
// benchmark merchant, verified and settled by the facilitator at FACILITATOR_URL.
//
// usage: PORT=… FACILITATOR_URL=http://127.0.0.1:… PAY_TO=0x… X402_NODE_MODULES=…/interop/node_modules node server.mjs
//
// The packages are the pinned ones of interop/package.json (@x402/express 2.27.0, express
// 5.3.0), installed by scripts/testbed-install.sh; X402_NODE_MODULES names that folder
// (default: interop/node_modules of this checkout). Nothing is logged per request.
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const modules =
  process.env.X402_NODE_MODULES ?? fileURLToPath(new URL("../../../interop/node_modules", import.meta.url));
if (!existsSync(join(modules, "@x402", "express"))) {
  console.error(`@x402/express is not installed in ${modules}: run scripts/testbed-install.sh --chain-only`);
  process.exit(2);
}
// Resolve the packages as a module inside that folder would.
const require = createRequire(join(modules, "..", "package.json"));
const express = require("express");
const { paymentMiddleware, x402ResourceServer } = require("@x402/express");
const { ExactEvmScheme } = require("@x402/evm/exact/server");
const { HTTPFacilitatorClient } = require("@x402/core/server");

const port = Number(process.env.PORT);
const facilitatorUrl = process.env.FACILITATOR_URL;
const payTo = process.env.PAY_TO;
if (!port || !facilitatorUrl || !payTo) {
  console.error("PORT, FACILITATOR_URL and PAY_TO are required");
  process.exit(2);
}

const facilitator = new HTTPFacilitatorClient({ url: facilitatorUrl });
const server = new x402ResourceServer(facilitator).register("eip155:84532", new ExactEvmScheme());
const app = express();
app.use(
  paymentMiddleware(
    {
      "GET /weather": {
        accepts: { scheme: "exact", price: "$0.001", network: "eip155:84532", payTo },
        description: "Current weather",
        mimeType: "application/json",
      },
    },
    server,
  ),
);
app.get("/weather", (req, res) =>
  res.json({ city: String(req.query.city ?? ""), celsius: 21.5, conditions: "clear" }),
);
app.listen(port, "127.0.0.1", () => console.log(`listening on 127.0.0.1:${port}`));
