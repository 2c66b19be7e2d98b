// An OpenID issuer on loopback for the console's sign-in tests: oauth2-mock-server, its access
// tokens carrying the audience, tenants and roles claims the gateway expects.
//
// Usage: node openid_issuer.mjs '{"audience": ..., "clientId": ..., "subject": ...,
//   "tenants": [...], "roles": [...], "lifetime": 60}'
// Prints one JSON line per event: {"url"} once listening, then {"authorize": query} and
// {"token": form} for each request it answers. A line on stdin changes what it does next:
// {"refuseRefresh": true} refuses refresh tokens; {"lifetime": s} sets token lifetimes.
import { createInterface } from "node:readline";
import { OAuth2Server } from "oauth2-mock-server";

const options = JSON.parse(process.argv[2]);
const say = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);

const server = new OAuth2Server();
await server.issuer.keys.generate("RS256");
await server.start(0, "127.0.0.1");
server.issuer.url = `http://127.0.0.1:${server.address().port}`;

server.service.on("beforeAuthorizeRedirect", (_redirect, request) => {
  say({ authorize: request.query });
});

server.service.on("beforeTokenSigning", (token) => {
  const now = Math.floor(Date.now() / 1000);
  token.payload.exp = now + options.lifetime;
  // The ID token's audience is the client; the access token is for the gateway.
  if (token.payload.aud === options.clientId) return;
  Object.assign(token.payload, {
    aud: options.audience,
    sub: options.subject,
    tenants: options.tenants,
    roles: options.roles,
  });
});

server.service.on("beforeResponse", (response, request) => {
  say({ token: request.body, status: options.refuseRefresh && request.body.grant_type === "refresh_token" ? 400 : 200 });
  if (options.refuseRefresh && request.body.grant_type === "refresh_token") {
    response.statusCode = 400;
    response.body = { error: "invalid_grant", error_description: "the refresh token was revoked" };
    return;
  }
  response.body.expires_in = options.lifetime;
});

createInterface({ input: process.stdin }).on("line", (line) => Object.assign(options, JSON.parse(line)));
say({ url: server.issuer.url });
