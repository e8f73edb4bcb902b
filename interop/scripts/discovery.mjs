// Reads the discovery surface of a running server with the pinned third-party readers and
// prints one JSON report on stdout (tests/discovery.rs judges it):
//   mppx          mppx/discovery `validate(doc)` findings for GET /openapi.json
//   origin        @agentcash/discovery `discoverOriginSchema` (routes, auth modes, prices)
//   endpoints     per paid route: @agentcash/discovery `checkEndpointSchema` with a live probe,
//                 `validatePaymentRequiredDetailed` of the decoded PAYMENT-REQUIRED header, and
//                 ajv (JSON Schema 2020-12) validating extensions.bazaar.info against its schema
// Usage: node scripts/discovery.mjs ORIGIN     (ORIGIN like http://127.0.0.1:4021)
import { checkEndpointSchema, discoverOriginSchema, validatePaymentRequiredDetailed } from '@agentcash/discovery';
import Ajv2020 from 'ajv/dist/2020.js';
import { validate } from 'mppx/discovery';

const origin = process.argv[2];
if (!origin) {
  console.error('usage: node scripts/discovery.mjs ORIGIN');
  process.exit(2);
}
const timeout = () => AbortSignal.timeout(10_000);

const doc = await (await fetch(`${origin}/openapi.json`, { signal: timeout() })).json();
const report = { mppx: validate(doc), origin: null, endpoints: [] };

const discovered = await discoverOriginSchema({ target: origin, signal: timeout() });
report.origin = {
  found: discovered.found,
  source: discovered.source,
  info: discovered.info,
  endpoints: discovered.endpoints,
  cause: discovered.cause,
  message: discovered.message,
};

const ajv = new Ajv2020({ strict: true, allErrors: true });
for (const [path, item] of Object.entries(doc.paths ?? {})) {
  for (const [method, operation] of Object.entries(item)) {
    if (!operation?.['x-payment-info']) continue;
    const url = `${origin}${path}`;
    const endpoint = { method: method.toUpperCase(), path };
    const checked = await checkEndpointSchema({ url, probe: true, signal: timeout() });
    endpoint.check = checked.found
      ? checked.advisories.map(({ method, source, authMode, estimatedPrice, protocols, inputSchema, outputSchema, paymentOptions }) => ({
          method, source, authMode, estimatedPrice, protocols,
          hasInputSchema: inputSchema !== undefined,
          hasOutputSchema: outputSchema !== undefined,
          paymentOptions,
        }))
      : { found: false, cause: checked.cause, message: checked.message };

    const response = await fetch(url, { method: endpoint.method, signal: timeout() });
    endpoint.status = response.status;
    const header = response.headers.get('payment-required');
    if (header) {
      const paymentRequired = JSON.parse(Buffer.from(header, 'base64').toString('utf8'));
      const detailed = validatePaymentRequiredDetailed(paymentRequired, {
        requireInputSchema: true,
        requireOutputSchema: true,
      });
      endpoint.paymentRequired = { valid: detailed.valid, issues: detailed.issues };
      const bazaar = paymentRequired.extensions?.bazaar;
      if (bazaar) {
        const valid = ajv.validate(bazaar.schema, bazaar.info);
        endpoint.bazaar = { valid, errors: ajv.errors ?? [] };
      } else {
        endpoint.bazaar = { valid: false, errors: ['no extensions.bazaar in the 402'] };
      }
    } else {
      endpoint.paymentRequired = { valid: false, issues: [{ code: 'NO_HEADER', severity: 'error' }] };
    }
    report.endpoints.push(endpoint);
  }
}
console.log(JSON.stringify(report, null, 2));
