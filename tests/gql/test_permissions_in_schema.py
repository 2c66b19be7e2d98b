"""What each operation needs is in the schema a client reads: every root field's description, as
a running gateway's introspection answers it, says "Requires: <permission> (roles: …)." naming
the permission its Requires extension checks and the documented one; each write that may change
a guarded setting (a write-only secret, a trust-anchor URL) names every such setting and the
permission it needs, read here from the models' own Guarded markers.

Before, the secret and trust-anchor checks inside the block updates, import and rollback were
visible only as a FORBIDDEN answer to an editor who had already tried.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated

from pydantic import BaseModel, Field

from ehr_gateway.ehr.blocks import PROVIDER_BLOCKS, ProviderSettings
from ehr_gateway.ehr.common import ExternalGatewayConnection, SettingsBlock
from ehr_gateway.ehr.fields import SECRET, TRUST, SettingsModel, guarded_by
from ehr_gateway.gql.authorization import Requires, requirement
from ehr_gateway.gql.schema import schema
from ehr_gateway.runtime.access import Permission
from tests.conftest import Gateway
from tests.gql.test_authorization_matrix import REQUIRED_PERMISSION, ROLE_PERMISSIONS

ROOT_DESCRIPTIONS = """
query RootDescriptions {
  __schema {
    queryType { name fields { name description } }
    mutationType { name fields { name description } }
    subscriptionType { name fields { name description } }
  }
}
"""

REQUIRES = re.compile(r"Requires: (?P<permission>[a-z]+:[a-z]+) \(roles: (?P<roles>[a-z, ]+)\)\.")
ALSO_REQUIRES = re.compile(
    r"Changing (?P<names>[A-Za-z, ]+?) also requires (?P<permission>[a-z:]+)\."
)

# The writes that may change a guarded setting, and what they may change: the block updates
# their block, import and rollback every block and the external gateway connection (rollback
# also the recorded JKU; import never a secret, the tenant keeps its own).
EVERY_BLOCK = (
    SettingsBlock.HEADERS,
    SettingsBlock.FHIR,
    SettingsBlock.EHR,
    SettingsBlock.OAUTH,
    SettingsBlock.EXTERNAL_GATEWAY,
)
WRITES: dict[str, tuple[tuple[SettingsBlock, ...], tuple[str, ...], bool]] = {
    "Mutation.updateHeaderSettings": ((SettingsBlock.HEADERS,), (), True),
    "Mutation.updateFhirSettings": ((SettingsBlock.FHIR,), (), True),
    "Mutation.updateEhrSettings": ((SettingsBlock.EHR,), (), True),
    "Mutation.updateOAuthSettings": ((SettingsBlock.OAUTH,), (), True),
    "Mutation.createExternalGateway": ((SettingsBlock.EXTERNAL_GATEWAY,), (), True),
    "Mutation.rollbackSettings": (EVERY_BLOCK, ("jku",), True),
    "Mutation.importSettings": (EVERY_BLOCK, (), False),
}


async def _published(gateway: Gateway) -> dict[str, str]:
    data = await gateway.execute(ROOT_DESCRIPTIONS)
    return {
        f"{root['name']}.{field['name']}": field["description"]
        for root in data["__schema"].values()
        for field in root["fields"]
    }


def _extension_permissions() -> dict[str, str]:
    """The permission each root field's Requires extension checks, from the built schema."""
    found = {}
    for type_name in ("Query", "Mutation", "Subscription"):
        definition = schema.get_type_by_name(type_name)
        for field in getattr(definition, "fields", ()):
            name = f"{type_name}.{schema.config.name_converter.get_graphql_name(field)}"
            (requires,) = [e for e in field.extensions if isinstance(e, Requires)]
            found[name] = requires.permission.value
    return found


def _models(blocks: Iterable[SettingsBlock]) -> list[type[BaseModel]]:
    models: list[type[BaseModel]] = []
    for block in blocks:
        if block is SettingsBlock.EXTERNAL_GATEWAY:
            models.append(ExternalGatewayConnection)
        models.extend(m for per in PROVIDER_BLOCKS.values() if (m := per.get(block)))
    return models


def _guarded(
    blocks: Iterable[SettingsBlock], parts: Iterable[str], secrets: bool
) -> dict[str, set[str]]:
    """Each further permission the settings of ``blocks`` and ``parts`` declare, and who."""
    fields = [(f.alias or n, f) for m in _models(blocks) for n, f in m.model_fields.items()]
    fields += [
        (ProviderSettings.model_fields[p].alias or p, ProviderSettings.model_fields[p])
        for p in parts
    ]
    found: dict[str, set[str]] = {}
    for name, field in fields:
        permission = guarded_by(field)
        secret = getattr(field.annotation, "is_write_only_secret", False)
        if permission is not None and (secrets or not secret):
            found.setdefault(permission, set()).add(name)
    return found


def _also_required(description: str) -> dict[str, set[str]]:
    return {
        match["permission"]: set(re.split(r", | or ", match["names"]))
        for match in ALSO_REQUIRES.finditer(description)
    }


async def test_every_root_field_says_what_it_requires(gateway: Gateway) -> None:
    published = await _published(gateway)
    checked = _extension_permissions()
    assert set(published) == set(REQUIRED_PERMISSION) == set(checked)
    for name, description in published.items():
        (match,) = REQUIRES.finditer(description)
        assert match["permission"] == REQUIRED_PERMISSION[name] == checked[name], name
        holders = [
            role for role, granted in ROLE_PERMISSIONS.items() if match["permission"] in granted
        ]
        assert match["roles"].split(", ") == holders, name
        assert description[0].isupper(), name


async def test_writes_name_every_guarded_setting_they_may_change(gateway: Gateway) -> None:
    published = await _published(gateway)
    for name, (blocks, parts, secrets) in WRITES.items():
        own = REQUIRED_PERMISSION[name]
        expected = {p: names for p, names in _guarded(blocks, parts, secrets).items() if p != own}
        assert _also_required(published[name]) == expected, name
    # The cases the issue named: an editor reads, before trying, that the Epic SOAP password
    # needs secrets:write and the JKU and issuer URLs integration:edit.
    ehr = _also_required(published["Mutation.updateEhrSettings"])
    assert "soapPassword" in ehr["secrets:write"]
    assert {"jkuServerUrl", "jwtIssuerUrl"} <= ehr["integration:edit"]
    # An import keeps the tenant's secrets, but the SOAP username (and a Cloudflare Access
    # client id) it carries is sent with the tenant's stored password (secret), so changing that
    # needs secrets:write too.
    assert _also_required(published["Mutation.importSettings"])["secrets:write"] == {
        "soapUsername",
        "cfAccessClientId",
    }


def test_a_newly_guarded_setting_is_described_without_further_code() -> None:
    class Block(SettingsModel):
        """A block with a new secret and a new trust anchor."""

        label: str | None = Field(default=None, description="A label.")
        api_key: Annotated[str | None, SECRET] = Field(default=None, description="A key.")
        callback_url: Annotated[str | None, TRUST] = Field(default=None, description="A URL.")

    note = requirement(Permission.EDIT, [Block])
    assert _also_required(note) == {
        "secrets:write": {"apiKey"},
        "integration:edit": {"callbackUrl"},
    }
    # A permission the field itself requires is not repeated as a further one.
    assert _also_required(requirement(Permission.INTEGRATE, [Block])) == {
        "secrets:write": {"apiKey"}
    }
