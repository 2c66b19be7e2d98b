// An admin page on Apollo Client 4 whose InMemoryCache knows only the gateway's possibleTypes:
// it loads the settings page and a history page, saves one section, and reads both back from
// the cache. Prints what the cache showed at each step.
//
// env: GATEWAY_URL, GATEWAY_TOKEN, TENANT_ID, POSSIBLE_TYPES (the path of possibleTypes.json)
import { readFileSync } from "node:fs";
import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client";

const { GATEWAY_URL, GATEWAY_TOKEN, TENANT_ID, POSSIBLE_TYPES } = process.env;

// One fragment for the current settings and for stored versions: it is on the interface both
// implement, which is what the cache needs possibleTypes for.
const SETTINGS_FIELDS = gql`
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

const SETTINGS_PAGE = gql`
  query SettingsPage($tenantId: ID!) {
    integrationSettings(tenantId: $tenantId) { ...SettingsFields }
  }
  ${SETTINGS_FIELDS}
`;

const HISTORY_PAGE = gql`
  query HistoryPage($tenantId: ID!) {
    settingsHistory(tenantId: $tenantId, first: 10) {
      versions { version settings { ...SettingsFields } }
    }
  }
  ${SETTINGS_FIELDS}
`;

// The section form saves one field and selects only what it shows: the block's other fields
// stay in the cache because the block merges by its id.
const SAVE_SSN = gql`
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
`;

const cache = new InMemoryCache({
  possibleTypes: JSON.parse(readFileSync(POSSIBLE_TYPES, "utf8")),
});
const client = new ApolloClient({
  cache,
  link: new HttpLink({
    uri: GATEWAY_URL,
    headers: { authorization: `Bearer ${GATEWAY_TOKEN}` },
  }),
});
const variables = { tenantId: TENANT_ID };

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

// What a component rendering `query` from the cache alone would get.
async function fromCache(query) {
  const diff = cache.diff({ query, variables, returnPartialData: true, optimistic: false });
  const { data } = await client.query({ query, variables, fetchPolicy: "cache-only" });
  return {
    complete: diff.complete,
    missing: (diff.missing ?? []).map((miss) => miss.message),
    data: data ?? null,
  };
}

const history = (data) =>
  data?.settingsHistory.versions.map((entry) => ({
    version: entry.version,
    settings: shown(entry.settings),
  })) ?? null;

const loaded = await client.query({ query: SETTINGS_PAGE, variables });
const loadedHistory = await client.query({ query: HISTORY_PAGE, variables });
const before = loaded.data.integrationSettings;

const saved = await client.mutate({
  mutation: SAVE_SSN,
  variables: { ...variables, ssn: "urn:oid:1.2.840.9", expectedVersion: before.version },
});

const page = await fromCache(SETTINGS_PAGE);
const historyAfterSave = await fromCache(HISTORY_PAGE);

// A history page fetched now holds every stored version, the old ones included: none of them
// may take the current settings' place.
await client.query({ query: HISTORY_PAGE, variables, fetchPolicy: "network-only" });
const pageAfterHistory = await fromCache(SETTINGS_PAGE);
const historyRefetched = await fromCache(HISTORY_PAGE);

console.log(
  JSON.stringify({
    loaded: shown(before),
    loadedHistory: history(loadedHistory.data),
    saved: {
      typename: saved.data.updateFhirSettings.__typename,
      version: saved.data.updateFhirSettings.settings?.version ?? null,
      errors: saved.data.updateFhirSettings.errors ?? [],
    },
    page: { ...page, data: shown(page.data?.integrationSettings) },
    historyAfterSave: { ...historyAfterSave, data: history(historyAfterSave.data) },
    pageAfterHistory: { ...pageAfterHistory, data: shown(pageAfterHistory.data?.integrationSettings) },
    historyRefetched: { ...historyRefetched, data: history(historyRefetched.data) },
  }),
);
