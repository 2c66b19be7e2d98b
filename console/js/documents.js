// GraphQL documents, built from the settings page's description (schema.json): the page reads
// exactly the fields it renders, for the active EHR only, and saves one section at a time.

const RESULT = `__typename
    ... on SettingsSaved { settings { id version } }
    ... on ValidationFailed { errors { path code message } }
    ... on VersionConflict { currentVersion }`;

/** What a setting's value is read as: a selection for objects, nothing for scalars. */
function selection(setting) {
  if (setting.kind === "secret") return `${setting.name} { isSet fingerprint updatedAt }`;
  if (setting.kind === "mapping") return `${setting.name} { ${setting.keys.join(" ")} }`;
  return setting.name;
}

/** What the page reads of one section's block (`field` of IntegrationSettings). */
function blockSelection(forms, provider, field) {
  if (field === "externalGateway") {
    const gateway = forms.externalGateway.settings.map(selection).join(" ");
    return `externalGateway { id ${gateway} externalGatewayId basePathUrl }`;
  }
  if (field === "patientRestriction") return "patientRestriction { id expression }";
  const section = forms.providers[provider].sections.find((s) => s.field === field);
  const fields = section.settings.map(selection).join(" ");
  return `${section.field} { ... on ${section.type} { id ${fields} } }`;
}

const READINESS_FIELDS = `readiness(tenantId: $tenantId) {
    ready
    checks { block path state message }
    warnings { block path code message }
  }`;

/** The page's query for a tenant whose active EHR is `provider` (null: none chosen yet). */
export function pageQuery(forms, provider) {
  const blocks = [];
  const sections = provider ? forms.providers[provider].sections : [];
  for (const section of sections) {
    if (!section.settings) continue;
    blocks.push(blockSelection(forms, provider, section.field));
  }
  return `query ConsolePage($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) {
    id version provider updatedAt updatedBy
    ${blockSelection(forms, provider, "externalGateway")}
    ${blockSelection(forms, provider, "patientRestriction")}
    ${blocks.join("\n    ")}
  }
  ${READINESS_FIELDS}
}`;
}

export const SELECT_PROVIDER = `mutation SelectProvider($tenantId: ID!, $provider: EhrProvider!, $expectedVersion: Int) {
  selectEhrProvider(tenantId: $tenantId, provider: $provider, expectedVersion: $expectedVersion) {
    ${RESULT}
  }
}`;

export const SAVE_GATEWAY = `mutation SaveExternalGateway($tenantId: ID!, $connection: ExternalGatewayConnectionInput!, $expectedVersion: Int) {
  createExternalGateway(tenantId: $tenantId, connection: $connection, expectedVersion: $expectedVersion) {
    ${RESULT}
  }
}`;

export const SAVE_RESTRICTION = `mutation SavePatientRestriction($tenantId: ID!, $expression: String, $expectedVersion: Int) {
  updatePatientRestriction(tenantId: $tenantId, expression: $expression, expectedVersion: $expectedVersion) {
    ${RESULT}
  }
}`;

const INPUT_TYPES = {
  updateHeaderSettings: "HeaderSettingsInput",
  updateFhirSettings: "FhirSettingsInput",
  updateEhrSettings: "EhrSettingsInput",
  updateOAuthSettings: "OAuthSettingsInput",
};

/** The mutation that saves a block section of the active EHR. */
export function saveBlock(section) {
  const inputType = INPUT_TYPES[section.mutation];
  return `mutation Save${inputType.replace("Input", "")}($tenantId: ID!, $input: ${inputType}!, $expectedVersion: Int) {
  ${section.mutation}(tenantId: $tenantId, input: $input, expectedVersion: $expectedVersion) {
    ${RESULT}
  }
}`;
}

export const SETTINGS_DIFF = `query ChangedMeanwhile($tenantId: ID!, $fromVersion: Int!, $toVersion: Int!) {
  settingsDiff(tenantId: $tenantId, fromVersion: $fromVersion, toVersion: $toVersion) {
    __typename
    ... on SettingsDiff { changes { path before after } }
    ... on ValidationFailed { errors { path code message } }
  }
}`;

// From the version the page loaded: a change stored between the load and the subscription, or
// while the socket reconnects, is replayed from history rather than missed.
export const LIVE = `subscription Live($tenantId: ID!, $sinceVersion: Int) {
  configurationChanged(tenantId: $tenantId, sinceVersion: $sinceVersion) {
    tenantId version changedBlocks changedAt actor
  }
}`;

// Also the tenant's EHR: its page is then read in one request.
export const WHO_AM_I = `query SignIn($tenantId: ID!) { readiness(tenantId: $tenantId) { ready provider } }`;

// After a save: readiness is read again; the settings come from the normalised cache, which the
// save's answer (the section's values, version and last change) has updated.
export const READINESS = `query Readiness($tenantId: ID!) {
  ${READINESS_FIELDS}
}`;

/**
 * `document` (a save) answering, when saved, with the section's block as the page reads it:
 * graphcache writes it over the page's entities, so the page is not read again.
 */
export function withSavedSection(document, forms, provider, key) {
  const block = blockSelection(forms, provider, key);
  return document.replace(
    "... on SettingsSaved { settings { id version } }",
    `... on SettingsSaved { settings { id version updatedAt updatedBy ${block} } }`,
  );
}
