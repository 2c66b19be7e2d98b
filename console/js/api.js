// The GraphQL client: urql with graphcache (a normalised cache fed the committed possibleTypes
// and the types without ids of their own), subscriptions over graphql-transport-ws
// (graphql-ws) on the same origin. The token lives in this closure only: never in storage.
import { Client, fetchExchange, subscriptionExchange } from "@urql/core";
import { cacheExchange } from "@urql/exchange-graphcache";
import { createClient as createWsClient } from "graphql-ws";

export const GRAPHQL_URL = new URL("../graphql", document.baseURI).href;

function socketUrl() {
  const url = new URL(GRAPHQL_URL);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

/**
 * A client acting with `token` (or a function giving the token to send now: one renewed before
 * it expires); `close()` ends its WebSocket; `onLive` hears its state.
 */
export function connect(token, forms, onLive = () => {}) {
  const authorization = () => `Bearer ${typeof token === "function" ? token() : token}`;
  const ws = createWsClient({
    url: socketUrl(),
    lazy: true,
    retryAttempts: Infinity,
    connectionParams: () => ({ Authorization: authorization() }),
    // What the page says of its live view is what the socket does, not what was asked.
    on: {
      connecting: () => onLive("connecting"),
      connected: () => onLive("on"),
      closed: () => onLive("off"),
    },
  });
  const keys = Object.fromEntries(forms.embeddedTypes.map((name) => [name, () => null]));
  const client = new Client({
    url: GRAPHQL_URL,
    preferGetMethod: false,
    requestPolicy: "network-only",
    fetchOptions: () => ({
      headers: {
        authorization: authorization(),
        accept: "application/graphql-response+json, application/json;q=0.9",
      },
    }),
    exchanges: [
      cacheExchange({ possibleTypes: forms.possibleTypes, keys }),
      fetchExchange,
      subscriptionExchange({
        forwardSubscription(request) {
          const input = { ...request, query: request.query || "" };
          return {
            subscribe(sink) {
              return { unsubscribe: ws.subscribe(input, sink) };
            },
          };
        },
      }),
    ],
  });
  return {
    client,
    close: () => ws.dispose(),
    /** The result's data, or an Error whose message says what went wrong, in words. */
    /** `requestPolicy` "cache-first": from the normalised cache when it holds every field. */
    async query(document, variables, requestPolicy = "network-only") {
      return unwrap(await client.query(document, variables, { requestPolicy }).toPromise());
    },
    async mutate(document, variables) {
      return unwrap(await client.mutation(document, variables).toPromise());
    },
    subscribe(document, variables, onData, onError) {
      const { unsubscribe } = client.subscription(document, variables).subscribe((result) => {
        if (result.error) onError(describe(result.error));
        else if (result.data) onData(result.data);
      });
      return unsubscribe;
    },
  };
}

function unwrap(result) {
  if (result.error) throw describe(result.error);
  return result.data;
}

/** An error in words: the gateway's message, or what failed on the way. */
export function describe(error) {
  if (error.graphQLErrors?.length) {
    const first = error.graphQLErrors[0];
    const found = new Error(first.message);
    found.code = first.extensions?.code;
    return found;
  }
  if (error.networkError) {
    return new Error(`The gateway could not be reached: ${error.networkError.message}`);
  }
  return new Error(error.message || String(error));
}

/** The claims of a JWT, read (not verified: the gateway verifies it on every request). */
export function claimsOf(token) {
  const parts = token.split(".");
  if (parts.length !== 3) throw new Error("This is not a token: a token has three parts separated by dots.");
  try {
    const text = atob(parts[1].replace(/-/g, "+").replace(/_/g, "/"));
    return JSON.parse(decodeURIComponent(escape(text)));
  } catch {
    throw new Error("This token's claims cannot be read.");
  }
}
