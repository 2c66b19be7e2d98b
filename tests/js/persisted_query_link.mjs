// Apollo Client 4 with its persisted-query link against a gateway, every request it sends
// recorded as it left (method, whether it carried the document text, the hash or id).
// Usage: node persisted_query_link.mjs apq|manifest [MANIFEST]
// Environment: GATEWAY_URL, TOKEN, TENANT.
import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { PersistedQueryLink } from "@apollo/client/link/persisted-queries";
import { generatePersistedQueryIdsFromManifest } from "@apollo/persisted-query-lists";
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";

const [mode, manifestPath] = process.argv.slice(2);
const { GATEWAY_URL, TOKEN, TENANT } = process.env;

const sent = [];
async function recordingFetch(url, init) {
  const target = new URL(url);
  const body = init.body ? JSON.parse(init.body) : null;
  const extensions = body?.extensions ?? JSON.parse(target.searchParams.get("extensions") ?? "null");
  sent.push({
    method: init.method ?? "GET",
    query: Boolean(body?.query ?? target.searchParams.get("query")),
    hash: extensions?.persistedQuery?.sha256Hash ?? null,
  });
  return fetch(url, init);
}

const hashes =
  mode === "manifest"
    ? generatePersistedQueryIdsFromManifest({
        loadManifest: async () => JSON.parse(await readFile(manifestPath, "utf8")),
      })
    : { sha256: (text) => createHash("sha256").update(text).digest("hex") };

const client = new ApolloClient({
  cache: new InMemoryCache(),
  link: new PersistedQueryLink({ ...hashes, useGETForHashedQueries: true }).concat(
    new HttpLink({
      uri: `${GATEWAY_URL}/graphql`,
      headers: { authorization: `Bearer ${TOKEN}` },
      fetch: recordingFetch,
    }),
  ),
});

const SETTINGS = gql`
  query AdminPageSettings($tenantId: ID!) {
    integrationSettings(tenantId: $tenantId) {
      tenantId
      version
      provider
    }
  }
`;
const SELECT = gql`
  mutation AdminPageSelectProvider($tenantId: ID!, $provider: EhrProvider!) {
    selectEhrProvider(tenantId: $tenantId, provider: $provider) {
      __typename
    }
  }
`;

const results = [];
const selected = await client.mutate({
  mutation: SELECT,
  variables: { tenantId: TENANT, provider: "EPIC" },
});
results.push(selected.data);
for (let i = 0; i < 3; i++) {
  const read = await client.query({
    query: SETTINGS,
    variables: { tenantId: TENANT },
    fetchPolicy: "network-only",
  });
  results.push(read.data);
}
console.log(JSON.stringify({ sent, results }));
