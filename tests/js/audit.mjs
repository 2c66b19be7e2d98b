// The GraphQL-over-HTTP audit (graphql-http's serverAudits) against a running gateway.
// GATEWAY_URL: the gateway's base URL; GATEWAY_TOKEN: a bearer token the audit's requests carry.
// Prints one JSON document: [{id, name, status, reason}] for every audit.
import { auditServer } from "graphql-http";

const url = `${process.env.GATEWAY_URL}/graphql`;
const token = process.env.GATEWAY_TOKEN;

// The gateway serves nobody without a token: each audit request carries one, as a frontend's do.
function fetchWithToken(input, init = {}) {
  const headers = new Headers(init.headers);
  headers.set("authorization", `Bearer ${token}`);
  return fetch(input, { ...init, headers });
}

const results = await auditServer({ url, fetchFn: fetchWithToken });
const findings = results.map(({ id, name, status, reason }) => ({
  id,
  name,
  status,
  reason: reason ?? null,
}));
console.log(JSON.stringify(findings));
