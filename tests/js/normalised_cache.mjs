// An admin page on a normalised cache that knows only the gateway's possibleTypes (Apollo
// Client 4's InMemoryCache, or urql's graphcache): it loads the settings page and a history
// page, saves one section, and reads both back from the cache. Prints what the cache showed at
// each step.
//
// usage: node normalised_cache.mjs apollo|urql
// env: GATEWAY_URL, GATEWAY_TOKEN, TENANT_ID, POSSIBLE_TYPES (the path of possibleTypes.json)
import { readFileSync } from "node:fs";
import { ApolloClient, HttpLink, InMemoryCache } from "@apollo/client";
import { cacheExchange } from "@urql/exchange-graphcache";
import { Client, fetchExchange } from "@urql/core";
import { parse } from "graphql";

const { GATEWAY_URL, GATEWAY_TOKEN, TENANT_ID, POSSIBLE_TYPES } = process.env;

// One fragment for the current settings and for stored versions: it is on the interface both
// implement, which is what the cache needs possibleTypes for.
const SETTINGS_FIELDS = `
  fragment SettingsFields on SettingsView {
    id
    version
    provider
    patientRestriction { id expression }
    fhir {
      ... on EpicFhirSettings { id urlPrefix ssnIdentifier mrnIdentifier useBatch }
    }
  }
`;

const SETTINGS_PAGE = parse(`
  query SettingsPage($tenantId: ID!) {
    integrationSettings(tenantId: $tenantId) { ...SettingsFields }
  }
  ${SETTINGS_FIELDS}
`);

const HISTORY_PAGE = parse(`
  query HistoryPage($tenantId: ID!) {
    settingsHistory(tenantId: $tenantId, first: 10) {
      versions { id version settings { ...SettingsFields } }
    }
  }
  ${SETTINGS_FIELDS}
`);

// The section form saves one field and selects only what it shows: the block's other fields
// stay in the cache because the block merges by its id.
const SAVE_SSN = parse(`
  mutation SaveSsn($tenantId: ID!, $ssn: String!, $expectedVersion: Int) {
    updateFhirSettings(
      tenantId: $tenantId, input: { epic: { ssnIdentifier: $ssn } }, expectedVersion: $expectedVersion
    ) {
      __typename
      ... on SettingsSaved {
        settings { id version fhir { ... on EpicFhirSettings { id ssnIdentifier } } }
      }
      ... on ValidationFailed { errors { path code } }
    }
  }
`);

// What the caches warn about (Apollo's "Cache data may be lost when replacing ..." is the sign of
// an object it could not normalise), reported rather than printed.
const warnings = [];
console.warn = (...args) => warnings.push(args.map(String).join(" "));

const possibleTypes = JSON.parse(readFileSync(POSSIBLE_TYPES, "utf8"));
const headers = { authorization: `Bearer ${GATEWAY_TOKEN}` };
const variables = { tenantId: TENANT_ID };

// The two clients behind one face: fetch (from the network, or from the cache alone) and mutate.
function apollo() {
  const cache = new InMemoryCache({ possibleTypes });
  const client = new ApolloClient({ cache, link: new HttpLink({ uri: GATEWAY_URL, headers }) });
  return {
    fetch: async (query, policy) => (await client.query({ query, variables, fetchPolicy: policy })).data,
    // What a component rendering `query` from the cache alone gets.
    fromCache: async (query) => {
      const diff = cache.diff({ query, variables, returnPartialData: true, optimistic: false });
      const { data } = await client.query({ query, variables, fetchPolicy: "cache-only" });
      return {
        complete: diff.complete,
        missing: (diff.missing ?? []).map((miss) => miss.message),
        data: data ?? null,
      };
    },
    mutate: async (mutation, values) => (await client.mutate({ mutation, variables: values })).data,
  };
}

function urql() {
  const client = new Client({
    url: GATEWAY_URL,
    fetchOptions: { headers },
    exchanges: [cacheExchange({ possibleTypes }), fetchExchange],
  });
  const run = async (operation) => {
    const result = await operation.toPromise();
    if (result.error) throw result.error;
    return result.data ?? null;
  };
  return {
    fetch: (query, policy) => run(client.query(query, variables, { requestPolicy: policy })),
    // Graphcache answers cache-only with nothing when a selected field is missing.
    fromCache: async (query) => {
      const data = await run(client.query(query, variables, { requestPolicy: "cache-only" }));
      return { complete: data !== null, missing: [], data };
    },
    mutate: (mutation, values) => run(client.mutation(mutation, values)),
  };
}

const admin = { apollo, urql }[process.argv[2]]();

const shown = (settings) =>
  settings && {
    id: settings.id,
    version: settings.version,
    provider: settings.provider,
    expression: settings.patientRestriction?.expression ?? null,
    fhir: settings.fhir && {
      urlPrefix: settings.fhir.urlPrefix,
      ssnIdentifier: settings.fhir.ssnIdentifier,
      mrnIdentifier: settings.fhir.mrnIdentifier,
      useBatch: settings.fhir.useBatch,
    },
  };

const history = (data) =>
  data?.settingsHistory.versions.map((entry) => ({
    version: entry.version,
    settings: shown(entry.settings),
  })) ?? null;

const loaded = await admin.fetch(SETTINGS_PAGE, "network-only");
const loadedHistory = await admin.fetch(HISTORY_PAGE, "network-only");
const before = loaded.integrationSettings;

const saved = await admin.mutate(SAVE_SSN, {
  ...variables,
  ssn: "urn:oid:1.2.840.9",
  expectedVersion: before.version,
});

const page = await admin.fromCache(SETTINGS_PAGE);
const historyAfterSave = await admin.fromCache(HISTORY_PAGE);

// A history page fetched now holds every stored version, the old ones included: none of them
// may take the current settings' place.
await admin.fetch(HISTORY_PAGE, "network-only");
const pageAfterHistory = await admin.fromCache(SETTINGS_PAGE);
const historyRefetched = await admin.fromCache(HISTORY_PAGE);

console.log(
  JSON.stringify({
    loaded: shown(before),
    loadedHistory: history(loadedHistory),
    saved: {
      typename: saved.updateFhirSettings.__typename,
      version: saved.updateFhirSettings.settings?.version ?? null,
      errors: saved.updateFhirSettings.errors ?? [],
    },
    page: { ...page, data: shown(page.data?.integrationSettings) },
    historyAfterSave: { ...historyAfterSave, data: history(historyAfterSave.data) },
    pageAfterHistory: { ...pageAfterHistory, data: shown(pageAfterHistory.data?.integrationSettings) },
    historyRefetched: { ...historyRefetched, data: history(historyRefetched.data) },
    warnings,
    // The types a cache could not give an identity to (urql names them in its warnings).
    unkeyed: [
      ...new Set(warnings.flatMap((text) => text.match(/`keys` config for `(\w+)` that/)?.[1] ?? [])),
    ].sort(),
  }),
);
