"""The schema: committed SDL matches the code; the contract's unions and field counts hold."""

from __future__ import annotations

from pathlib import Path

import pytest

from ehr_gateway.gql.schema import schema
from tests.conftest import Gateway

SCHEMA_FILE = Path(__file__).parents[2] / "schema.graphql"

INTROSPECT_TYPES = """
query Types {
  __schema {
    types {
      name kind
      possibleTypes { name }
      fields { name description }
      inputFields { name }
    }
  }
}
"""

UNIONS = {
    "HeaderSettings": {"EpicHeaderSettings", "GenericHeaderSettings"},
    "FhirSettings": {"EpicFhirSettings", "AthenaFhirSettings", "CernerFhirSettings"},
    "EhrSettings": {"EpicSettings", "AthenaSettings", "CernerSettings", "EllkaySettings"},
    "OAuthSettings": {"EpicOAuthSettings"},
    "SettingsResult": {"SettingsSaved", "ValidationFailed", "VersionConflict"},
}

# The settings of the spec's tables, counted per section (Epic: 3 headers, 15 FHIR, 31 Epic, 2
# OAuth; Athena: 2 FHIR, 17 Athena; Cerner: 21 FHIR; Ellkay: 12). EpicSettings has one more than
# the spec's 31: JWT Audience, the `aud` verifyEpicJwt expects in Epic's JWTs.
FIELD_COUNTS = {
    "EpicHeaderSettings": 3,
    "EpicFhirSettings": 15,
    "EpicSettings": 32,
    "EpicOAuthSettings": 2,
    "AthenaFhirSettings": 2,
    "AthenaSettings": 17,
    "CernerFhirSettings": 21,
    "EllkaySettings": 12,
}


def test_the_committed_schema_is_the_one_the_code_prints() -> None:
    assert SCHEMA_FILE.read_text() == schema.as_str() + "\n", (
        "schema.graphql is stale: run `ehr-gateway export-schema > schema.graphql`"
    )


@pytest.fixture
async def types(gateway: Gateway) -> dict[str, dict[str, object]]:
    data = await gateway.execute(INTROSPECT_TYPES)
    return {item["name"]: item for item in data["__schema"]["types"]}


async def test_each_block_is_a_union_of_the_ehrs_that_have_it(
    types: dict[str, dict[str, object]],
) -> None:
    for union, members in UNIONS.items():
        assert types[union]["kind"] == "UNION"
        assert {member["name"] for member in types[union]["possibleTypes"]} == members  # type: ignore[attr-defined]


async def test_every_setting_of_the_spec_is_a_described_field(
    types: dict[str, dict[str, object]],
) -> None:
    for type_name, count in FIELD_COUNTS.items():
        # Every field but the block's id (for normalised caches) is a setting.
        fields = [field for field in types[type_name]["fields"] if field["name"] != "id"]  # type: ignore[attr-defined]
        assert len(fields) == count, type_name
        undocumented = [field["name"] for field in fields if not field["description"]]  # type: ignore[attr-defined]
        assert undocumented == [], type_name
        inputs = types[f"{type_name}Input"]["inputFields"]
        assert len(inputs) == count, f"{type_name}Input"  # type: ignore[arg-type]


async def test_block_inputs_are_one_of_inputs(gateway: Gateway) -> None:
    sdl = SCHEMA_FILE.read_text()
    for name in (
        "HeaderSettingsInput",
        "FhirSettingsInput",
        "EhrSettingsInput",
        "OAuthSettingsInput",
    ):
        assert f"input {name} @oneOf {{" in sdl
    body = await gateway.post(
        'mutation { updateFhirSettings(tenantId: "t", input: {epic: {}, cerner: {}}) '
        "{ __typename } }"
    )
    assert "exactly one" in body["errors"][0]["message"].lower()
