"""GraphQL documents shared by the tests, written as a frontend would write them."""

SETTINGS_FIELDS = """
fragment SettingsFields on SettingsView {
  tenantId version provider updatedAt updatedBy
  externalGateway { externalGatewayId basePathUrl name baseUrl environment description }
  patientRestriction { expression }
  headers {
    __typename
    ... on EpicHeaderSettings { epicClientId epicUserId epicUserIdType }
    ... on GenericHeaderSettings { customHeaders { name value } }
  }
  fhir {
    __typename
    ... on EpicFhirSettings {
      urlPrefix ssnIdentifier mrnIdentifier practitionerExternalUrn locationExternalUrn
      selfServiceIdentifier legalSexSearch useBatch dayRangeForTemporalSearches
      useGtInDateRange useLtInDateRange useTelecom usePatientIdAsIdentifier
      categoryFilterArray directRescheduleUseCase
    }
    ... on AthenaFhirSettings { useBatch categoryFilterArray }
    ... on CernerFhirSettings {
      urlPrefix ssnIdentifier mrnIdentifier serviceTypeIdentifier selfServiceIdentifier
      legalSexSearch useBatch dayRangeForTemporalSearches useGtInDateRange useLtInDateRange
      useTelecom usePatientIdAsIdentifier bypassAppointmentRead categoryFilterArray
      systemForSendInteractiveRecords codeForSendInteractiveRecords
      displayForSendInteractiveRecords textForSendInteractiveRecords
      authorReferenceIdForSendInteractiveRecords titleForSendInteractiveRecords
      authorReferenceTypeForSendInteractiveRecords
    }
  }
  ehr {
    __typename
    ... on EpicSettings {
      vipFlagType context jkuServerUrl enableDefaultJkuServerUrlPattern jwtIssuerUrl
      epicUserId epicUserIdType providerIdType locationIdType visitIdType soapUsername
      soapPassword { isSet fingerprint updatedAt }
      useOauth oauthBasePath receiveCommunicationVersion phoneSystemId phoneSystemType
      fallbackEntryDepartmentIdForServiceRecord fallbackEntryDepartmentTypeForServiceRecord
      fallbackAgentUserIdForServiceRecord fallbackAgentUserTypeForServiceRecord
      sourceTypeForServiceRecord sourceNameForServiceRecord sourceEntityIdForServiceRecord
      sourceEntityTypeForServiceRecord fallbackPatientIdTypeForServiceRecord
      epicMaximumSlotSearchDateRangeInDays maxAllowedSlotSearchDateRangeDays
      quickCrmTopicMapping { name value } sendRecordingUrl sendDataAfterMissedCall
    }
    ... on AthenaSettings {
      practiceId patientMrnCustomFieldId cacheProvidersEnabled cacheProvidersDurationTtl
      cacheDepartmentsEnabled cacheDepartmentsDurationTtl patientFullSsn patientMrn
      appointmentConfirmationId departmentIdForSendInteractiveRecords customFieldEnabled
      customFieldMapping { name value } createCaseAutomaticallyAddClosedStatus
      sendDataDecision caseClassForSendData sendRecordingUrl sendDataAfterMissedCall
    }
    ... on CernerSettings { hasSettings }
    ... on EllkaySettings {
      subscriberKey { isSet fingerprint updatedAt } siteServiceKey { isSet fingerprint updatedAt }
      appointmentEncounterSearchMaxDays
      appointmentConfirmationComment slotSearchMaxDays nameForSendInteractiveRecords
      documentTypeIdForSendInteractiveRecords waitlistingStatusName reschedulingStatusName
      accountTimeZoneOffset sendRecordingUrl sendDataAfterMissedCall
    }
  }
  oauth { __typename ... on EpicOAuthSettings { epicClientId oauthTokenUrl } }
}
"""

RESULT_FIELDS = (
    """
fragment ResultFields on SettingsResult {
  __typename
  ... on SettingsSaved { settings { ...SettingsFields } }
  ... on ValidationFailed { errors { path code message } }
  ... on VersionConflict { currentVersion }
}
"""
    + SETTINGS_FIELDS
)

INTEGRATION_SETTINGS = (
    """
query IntegrationSettings($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) { ...SettingsFields }
}
"""
    + SETTINGS_FIELDS
)

SELECT_PROVIDER = (
    """
mutation SelectProvider($tenantId: ID!, $provider: EhrProvider!, $expectedVersion: Int) {
  selectEhrProvider(tenantId: $tenantId, provider: $provider, expectedVersion: $expectedVersion) {
    ...ResultFields
  }
}
"""
    + RESULT_FIELDS
)

UPDATE_HEADERS = (
    """
mutation UpdateHeaders($tenantId: ID!, $input: HeaderSettingsInput!, $expectedVersion: Int) {
  updateHeaderSettings(tenantId: $tenantId, input: $input, expectedVersion: $expectedVersion) {
    ...ResultFields
  }
}
"""
    + RESULT_FIELDS
)

UPDATE_FHIR = (
    """
mutation UpdateFhir($tenantId: ID!, $input: FhirSettingsInput!, $expectedVersion: Int) {
  updateFhirSettings(tenantId: $tenantId, input: $input, expectedVersion: $expectedVersion) {
    ...ResultFields
  }
}
"""
    + RESULT_FIELDS
)

UPDATE_EHR = (
    """
mutation UpdateEhr($tenantId: ID!, $input: EhrSettingsInput!, $expectedVersion: Int) {
  updateEhrSettings(tenantId: $tenantId, input: $input, expectedVersion: $expectedVersion) {
    ...ResultFields
  }
}
"""
    + RESULT_FIELDS
)

UPDATE_OAUTH = (
    """
mutation UpdateOAuth($tenantId: ID!, $input: OAuthSettingsInput!, $expectedVersion: Int) {
  updateOAuthSettings(tenantId: $tenantId, input: $input, expectedVersion: $expectedVersion) {
    ...ResultFields
  }
}
"""
    + RESULT_FIELDS
)

UPDATE_PATIENT_RESTRICTION = (
    """
mutation UpdatePatientRestriction($tenantId: ID!, $expression: String, $expectedVersion: Int) {
  updatePatientRestriction(
    tenantId: $tenantId, expression: $expression, expectedVersion: $expectedVersion
  ) { ...ResultFields }
}
"""
    + RESULT_FIELDS
)

CREATE_EXTERNAL_GATEWAY = (
    """
mutation CreateExternalGateway(
  $tenantId: ID!, $connection: ExternalGatewayConnectionInput!, $expectedVersion: Int
) {
  createExternalGateway(
    tenantId: $tenantId, connection: $connection, expectedVersion: $expectedVersion
  ) { ...ResultFields }
}
"""
    + RESULT_FIELDS
)

READINESS = """
query Readiness($tenantId: ID!) {
  readiness(tenantId: $tenantId) {
    tenantId provider ready
    checks { block path state message }
    missing { block path state message }
    warnings { block path code message }
  }
}
"""

SETTINGS_HISTORY = """
query SettingsHistory($tenantId: ID!, $first: Int, $before: Int) {
  settingsHistory(tenantId: $tenantId, first: $first, before: $before) {
    hasMore nextBefore
    versions {
      version changedAt actor changedBlocks changedPaths
      settings { version provider patientRestriction { expression } }
    }
  }
}
"""

EVALUATE_PATIENT_RESTRICTION = """
query EvaluatePatientRestriction($tenantId: ID!, $age: Int!) {
  evaluatePatientRestriction(tenantId: $tenantId, age: $age) {
    __typename
    ... on RestrictionEvaluated { restricted expression }
    ... on ValidationFailed { errors { path code message } }
  }
}
"""

# Selecting each EHR, as the admin page's provider switch does.
SELECT_EPIC = """
mutation SelectEpic($tenantId: ID!) {
  selectEhrProvider(tenantId: $tenantId, provider: EPIC) { __typename }
}
"""

SELECT_ATHENA = """
mutation SelectAthena($tenantId: ID!) {
  selectEhrProvider(tenantId: $tenantId, provider: ATHENA) { __typename }
}
"""

SELECT_CERNER = """
mutation SelectCerner($tenantId: ID!) {
  selectEhrProvider(tenantId: $tenantId, provider: CERNER) { __typename }
}
"""

SELECT_ELLKAY = """
mutation SelectEllkay($tenantId: ID!) {
  selectEhrProvider(tenantId: $tenantId, provider: ELLKAY) { __typename }
}
"""

# Small documents many tests share: their answer is only a type name or a version.
EXPORT_SETTINGS = """
query ExportSettings($tenantId: ID!) {
  exportSettings(tenantId: $tenantId)
}
"""

READ_VERSION = """
query ReadVersion($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) { version }
}
"""

SELECT_PROVIDER_BY_NAME = """
mutation SelectProviderByName($tenantId: ID!, $provider: EhrProvider!) {
  selectEhrProvider(tenantId: $tenantId, provider: $provider) { __typename }
}
"""

CREATE_GATEWAY_CONNECTION = """
mutation CreateExternalGateway($tenantId: ID!, $connection: ExternalGatewayConnectionInput!) {
  createExternalGateway(tenantId: $tenantId, connection: $connection) { __typename }
}
"""

DISCOVER_JKU = """
mutation DiscoverJku($tenantId: ID!, $issuerUrl: String) {
  discoverJku(tenantId: $tenantId, issuerUrl: $issuerUrl) { __typename }
}
"""

VERIFY_EPIC_JWT = """
query VerifyEpicJwt($tenantId: ID!, $token: String!) {
  verifyEpicJwt(tenantId: $tenantId, token: $token) { __typename ... on JwtRejected { code } }
}
"""

GENERATE_SIGNING_KEY = """
mutation GenerateSigningKey($tenantId: ID!) {
  generateOAuthSigningKey(tenantId: $tenantId) { __typename }
}
"""

# An Epic tenant ready for the OAuth token exchange but for its signing key (generated apart).
SET_UP_EPIC_OAUTH = """
mutation SetUpEpicOAuth($tenantId: ID!, $tokenUrl: String!) {
  selectEhrProvider(tenantId: $tenantId, provider: EPIC) { __typename }
  updateOAuthSettings(
    tenantId: $tenantId
    input: {epic: {epicClientId: "epic-backend-client", oauthTokenUrl: $tokenUrl}}
  ) { __typename }
}
"""

TEST_OAUTH_TOKEN = """
mutation TestOAuthToken($tenantId: ID!) {
  testOAuthToken(tenantId: $tenantId) {
    __typename
    ... on OAuthTokenTest { ok status tokenType scope expiresIn error errorDescription }
    ... on ValidationFailed { errors { path code } }
  }
}
"""
