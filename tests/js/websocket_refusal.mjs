// A graphql-ws client (as Apollo Client's GraphQLWsLink uses it) subscribes with the token given;
// prints how the connection ended: the close code and reason the client reports.
// Usage: node websocket_refusal.mjs WS_URL TOKEN QUERY VARIABLES_JSON
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [url, token, query, variables] = process.argv.slice(2);

const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: `Bearer ${token}` },
  retryAttempts: 0, // a refusal is the finding, not something to retry
});

const outcome = await new Promise((resolve) => {
  client.subscribe(
    { query, variables: JSON.parse(variables) },
    {
      next: (value) => resolve({ next: value }),
      error: (error) =>
        resolve(
          error && typeof error === "object" && "code" in error
            ? { closed: { code: error.code, reason: error.reason } }
            : { error: String(error) },
        ),
      complete: () => resolve({ complete: true }),
    },
  );
});
await client.dispose();
console.log(JSON.stringify(outcome));
