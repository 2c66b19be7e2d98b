"""console/schema.json, the description of the settings page the console renders its forms from,
is what ``ehr-gateway export-console-schema`` makes from the models today: a setting added to a
model appears in the console once the file is regenerated, with no console code change."""

from __future__ import annotations

import json

from ehr_gateway.gql.console_forms import console_forms_json
from ehr_gateway.server.console import console_dir


def test_the_committed_description_is_current() -> None:
    committed = (console_dir() / "schema.json").read_text()
    assert committed == console_forms_json(), (
        "console/schema.json is stale: ehr-gateway export-console-schema > console/schema.json"
    )


def test_every_setting_of_the_spec_is_on_the_page() -> None:
    forms = json.loads(console_forms_json())
    # spec/NOTES.md counts them: Epic 3 headers, 15 FHIR, 31 Epic settings (+ JWT Audience, ours)
    # and 2 OAuth; Athena 2 FHIR and 17; Cerner 21 FHIR; Ellkay 12.
    counts = {
        provider: {
            section["block"]: len(section.get("settings", [])) for section in page["sections"]
        }
        for provider, page in forms["providers"].items()
    }
    assert counts["EPIC"] | {"PROVIDER": 0} == {
        "PROVIDER": 0, "EXTERNAL_GATEWAY": 0, "HEADERS": 3, "PATIENT_RESTRICTION": 0,
        "FHIR": 15, "EHR": 32, "OAUTH": 2,
    }  # fmt: skip
    assert list(counts["EPIC"]) == [
        "PROVIDER", "EXTERNAL_GATEWAY", "HEADERS", "PATIENT_RESTRICTION", "FHIR", "EHR", "OAUTH",
    ]  # fmt: skip
    assert counts["ATHENA"]["FHIR"] == 2 and counts["ATHENA"]["EHR"] == 17
    assert counts["CERNER"]["FHIR"] == 21
    assert counts["ELLKAY"]["EHR"] == 12


def test_each_setting_has_the_input_its_type_needs() -> None:
    forms = json.loads(console_forms_json())
    kinds = {
        (provider, section["block"], setting["name"]): setting
        for provider, page in forms["providers"].items()
        for section in page["sections"]
        for setting in section.get("settings", [])
    }
    assert kinds["EPIC", "FHIR", "useBatch"]["kind"] == "switch"
    assert kinds["EPIC", "FHIR", "ssnIdentifier"]["label"] == "The ssn identifier"
    assert kinds["EPIC", "FHIR", "ssnIdentifier"]["kind"] == "uri"
    assert kinds["EPIC", "EHR", "jkuServerUrl"]["kind"] == "url"
    assert kinds["EPIC", "EHR", "jkuServerUrl"]["permission"] == "integration:edit"
    assert kinds["EPIC", "EHR", "soapPassword"]["kind"] == "secret"
    assert kinds["EPIC", "EHR", "epicMaximumSlotSearchDateRangeInDays"]["kind"] == "number"
    assert kinds["EPIC", "EHR", "epicMaximumSlotSearchDateRangeInDays"]["default"] == 30
    assert kinds["EPIC", "EHR", "quickCrmTopicMapping"]["kind"] == "mapping"
    assert kinds["EPIC", "EHR", "receiveCommunicationVersion"]["options"] == ["V1", "V3"]
    assert kinds["EPIC", "EHR", "sendRecordingUrl"]["label"] == "Send data to EHR: Recording URL"
    assert kinds["EPIC", "FHIR", "categoryFilterArray"]["kind"] == "list"
    assert kinds["ATHENA", "EHR", "cacheProvidersDurationTtl"]["kind"] == "duration"
    assert kinds["ATHENA", "EHR", "cacheProvidersDurationTtl"]["default"] == "PT20H"
    assert kinds["ELLKAY", "EHR", "accountTimeZoneOffset"]["kind"] == "offset"
