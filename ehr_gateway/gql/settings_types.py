"""GraphQL output types, generated from the ehr models; the unions; the settings, current
(IntegrationSettings) and as stored at a version (SettingsSnapshot)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Self

import strawberry
from pydantic import BaseModel
from strawberry.experimental.pydantic import type as pydantic_type

from ehr_gateway.ehr import athena, cerner, common, ellkay, epic
from ehr_gateway.ehr.blocks import TenantSettings
from ehr_gateway.ehr.common import SettingsBlock
from ehr_gateway.ehr.fields import NameValue
from ehr_gateway.ehr.secret import StoredSecret
from ehr_gateway.gql.enums import EhrProvider
from ehr_gateway.gql.jku_types import JkuKeySetType, ObservedJku
from ehr_gateway.resolvers.context import Context
from ehr_gateway.resolvers.jku_observations import observed_jkus
from ehr_gateway.resolvers.oauth import jwks_url
from ehr_gateway.resolvers.settings import effective_block

BLOCK_ID = (
    "Identifies this block of these settings for normalised caches (Apollo Client, urql): derived "
    "from the settings' id, so a saved block merges into the page's cached block and a stored "
    "version's block never overwrites the current one. Opaque: do not parse it."
)


@pydantic_type(
    model=StoredSecret, name="SecretStatus", include_computed=True,
    description="What may be known about a write-only secret; the value is never returned.",
)  # fmt: skip
class SecretStatus:
    """What may be known about a write-only secret. The value itself is never returned."""

    is_set: strawberry.auto
    updated_at: strawberry.auto
    fingerprint: strawberry.auto


@pydantic_type(model=NameValue, all_fields=True, name="NameValue", description=NameValue.__doc__)
class NameValueType:
    pass


@pydantic_type(
    model=common.CustomHeader, all_fields=True, name="CustomHeader",
    description=common.CustomHeader.__doc__,
)  # fmt: skip
class CustomHeaderType:
    pass


@pydantic_type(
    model=common.ExternalGateway, all_fields=True, name="ExternalGateway",
    description=common.ExternalGateway.__doc__,
)  # fmt: skip
class ExternalGatewayType:
    id: strawberry.ID = strawberry.field(description=BLOCK_ID)


@pydantic_type(
    model=common.PatientRestriction, all_fields=True, name="PatientRestriction",
    description=common.PatientRestriction.__doc__,
)  # fmt: skip
class PatientRestrictionType:
    id: strawberry.ID = strawberry.field(description=BLOCK_ID)


@pydantic_type(
    model=epic.EpicHeaderSettings, all_fields=True, name="EpicHeaderSettings",
    description=epic.EpicHeaderSettings.__doc__,
)  # fmt: skip
class EpicHeaderSettingsType:
    id: strawberry.ID = strawberry.field(description=BLOCK_ID)


@pydantic_type(
    model=common.GenericHeaderSettings, all_fields=True, name="GenericHeaderSettings",
    description=common.GenericHeaderSettings.__doc__,
)  # fmt: skip
class GenericHeaderSettingsType:
    id: strawberry.ID = strawberry.field(description=BLOCK_ID)


@pydantic_type(
    model=epic.EpicFhirSettings, all_fields=True, name="EpicFhirSettings",
    description=epic.EpicFhirSettings.__doc__,
)  # fmt: skip
class EpicFhirSettingsType:
    id: strawberry.ID = strawberry.field(description=BLOCK_ID)


@pydantic_type(
    model=athena.AthenaFhirSettings, all_fields=True, name="AthenaFhirSettings",
    description=athena.AthenaFhirSettings.__doc__,
)  # fmt: skip
class AthenaFhirSettingsType:
    id: strawberry.ID = strawberry.field(description=BLOCK_ID)


@pydantic_type(
    model=cerner.CernerFhirSettings, all_fields=True, name="CernerFhirSettings",
    description=cerner.CernerFhirSettings.__doc__,
)  # fmt: skip
class CernerFhirSettingsType:
    id: strawberry.ID = strawberry.field(description=BLOCK_ID)


@pydantic_type(
    model=epic.EpicSettings, all_fields=True, name="EpicSettings",
    description=epic.EpicSettings.__doc__,
)  # fmt: skip
class EpicSettingsType:
    id: strawberry.ID = strawberry.field(description=BLOCK_ID)


@pydantic_type(
    model=athena.AthenaSettings, all_fields=True, name="AthenaSettings",
    description=athena.AthenaSettings.__doc__,
)  # fmt: skip
class AthenaSettingsType:
    id: strawberry.ID = strawberry.field(description=BLOCK_ID)


@pydantic_type(
    model=cerner.CernerSettings, all_fields=True, include_computed=True, name="CernerSettings",
    description=cerner.CernerSettings.__doc__,
)  # fmt: skip
class CernerSettingsType:
    id: strawberry.ID = strawberry.field(description=BLOCK_ID)


@pydantic_type(
    model=ellkay.EllkaySettings, all_fields=True, name="EllkaySettings",
    description=ellkay.EllkaySettings.__doc__,
)  # fmt: skip
class EllkaySettingsType:
    id: strawberry.ID = strawberry.field(description=BLOCK_ID)


@pydantic_type(
    model=epic.EpicOAuthSettings, all_fields=True, name="EpicOAuthSettings",
    description=epic.EpicOAuthSettings.__doc__,
)  # fmt: skip
class EpicOAuthSettingsType:
    id: strawberry.ID = strawberry.field(description=BLOCK_ID)


@strawberry.type(description="A signing key of the tenant's Epic OAuth client (public facts only).")
class SigningKeyInfo:
    kid: str = strawberry.field(description="The key id, as in the JWKS and assertion headers.")
    created_at: datetime = strawberry.field(description="When the key was generated.")


HeaderSettings = Annotated[
    EpicHeaderSettingsType | GenericHeaderSettingsType,
    strawberry.union("HeaderSettings", description="The header settings of the active EHR."),
]
FhirSettings = Annotated[
    EpicFhirSettingsType | AthenaFhirSettingsType | CernerFhirSettingsType,
    strawberry.union(
        "FhirSettings", description="The FHIR settings of the active EHR (Ellkay has none)."
    ),
]
EhrSettings = Annotated[
    EpicSettingsType | AthenaSettingsType | CernerSettingsType | EllkaySettingsType,
    strawberry.union("EhrSettings", description="The settings specific to the active EHR."),
]
OAuthSettings = Annotated[
    EpicOAuthSettingsType,
    strawberry.union("OAuthSettings", description="The OAuth settings of the active EHR (Epic)."),
]

# The GraphQL type of each block model.
_TYPES: dict[type[BaseModel], Any] = {
    epic.EpicHeaderSettings: EpicHeaderSettingsType,
    common.GenericHeaderSettings: GenericHeaderSettingsType,
    epic.EpicFhirSettings: EpicFhirSettingsType,
    athena.AthenaFhirSettings: AthenaFhirSettingsType,
    cerner.CernerFhirSettings: CernerFhirSettingsType,
    epic.EpicSettings: EpicSettingsType,
    athena.AthenaSettings: AthenaSettingsType,
    cerner.CernerSettings: CernerSettingsType,
    ellkay.EllkaySettings: EllkaySettingsType,
    epic.EpicOAuthSettings: EpicOAuthSettingsType,
}


@strawberry.interface(
    description="A tenant's integration settings as the active EHR provider sees them: the "
    "current ones (IntegrationSettings) or those of a stored version (SettingsSnapshot). Write "
    "fragments on this interface to render both."
)
class SettingsView:
    id: strawberry.ID = strawberry.field(
        description="Identifies these settings for normalised caches (Apollo Client, urql). "
        "Opaque: do not parse it."
    )
    tenant_id: strawberry.ID = strawberry.field(description="The tenant the settings are for.")
    version: int = strawberry.field(
        description="Increases by one with every stored change; send it back as expectedVersion."
    )
    provider: EhrProvider | None = strawberry.field(description="The selected EHR provider.")
    updated_at: datetime | None = strawberry.field(description="When the last change was stored.")
    updated_by: str | None = strawberry.field(description="Who stored the last change.")
    stored: strawberry.Private[TenantSettings]
    context: strawberry.Private[Context]

    @staticmethod
    def identity(settings: TenantSettings) -> str:
        raise NotImplementedError

    @classmethod
    def of(cls, settings: TenantSettings, context: Context) -> Self:
        return cls(
            id=strawberry.ID(cls.identity(settings)),
            tenant_id=strawberry.ID(settings.tenant_id),
            version=settings.version,
            provider=settings.provider,
            updated_at=settings.updated_at,
            updated_by=settings.updated_by,
            stored=settings,
            context=context,
        )

    def _block_id(self, field: str) -> dict[str, Any]:
        # A provider's blocks are kept when the tenant switches away, and are other data than
        # the next provider's: the provider is part of their identity. Tenant ids have no ':'.
        # _name_ rather than the name property (Python code per read): the same string.
        provider = self.stored.provider._name_ if self.stored.provider else ""
        return {"id": strawberry.ID(f"{self.id}:{provider}:{field}")}

    def _block(self, block: SettingsBlock, field: str) -> Any:
        model, extra = self._stored_block(block, field)
        return None if model is None else _TYPES[type(model)].from_pydantic(model, extra=extra)

    # The stored models behind the fields that show one, with the values their GraphQL type
    # adds (the block's id): the resolvers below convert them into their Strawberry types; the
    # compiled read path (gql.compiled_reads) writes them straight to JSON (STORED_MODELS).

    def _stored_block(
        self, block: SettingsBlock, field: str
    ) -> tuple[BaseModel | None, dict[str, Any]]:
        return effective_block(self.context, self.stored, block), self._block_id(field)

    def _stored_external_gateway(self) -> tuple[common.ExternalGateway | None, dict[str, Any]]:
        if self.stored.provider is None:
            return None, {}
        gateway = self.stored.provider_settings(self.stored.provider).external_gateway
        return gateway, self._block_id("externalGateway")

    def _stored_jku_key_set(self) -> tuple[common.JkuSnapshot | None, dict[str, Any]]:
        if self.stored.provider is None:
            return None, {}
        return self.stored.provider_settings(self.stored.provider).jku, {}

    def _stored_patient_restriction(self) -> tuple[common.PatientRestriction, dict[str, Any]]:
        # The tenant's, whichever provider is active.
        return self.stored.patient_restriction, {
            "id": strawberry.ID(f"{self.id}:patientRestriction")
        }

    @strawberry.field(description="The external gateway connection of the active EHR.")
    def external_gateway(self) -> ExternalGatewayType | None:
        gateway, extra = self._stored_external_gateway()
        return None if gateway is None else ExternalGatewayType.from_pydantic(gateway, extra=extra)

    @strawberry.field(
        description="The JKU's keys as last discovered or refreshed (Epic); null before that."
    )
    def jku_key_set(self) -> JkuKeySetType | None:
        snapshot, _ = self._stored_jku_key_set()
        return None if snapshot is None else JkuKeySetType.from_pydantic(snapshot)

    @strawberry.field(
        description="JKUs named by the JWTs of requests to the base path URL (Epic): the 5 "
        "seen first, the first seen first (later ones cannot push them out; up to 20 are kept, "
        "and adoptObservedJku takes any of them); nothing in them is verified. Counted without "
        "a new settings version; the count may lag by a few seconds across replicas."
    )
    async def observed_jku(self) -> list[ObservedJku]:
        if self.stored.provider is not EhrProvider.EPIC:
            return []
        if self.context.record is not None:
            self.context.record.unversioned = True
        found = await observed_jkus(self.context, self.stored.tenant_id)
        return [ObservedJku.of(seen) for seen in found]

    @strawberry.field(
        description="The Epic OAuth client's signing keys, newest first: the first signs, the "
        "second (if any) stays published until the next rotation."
    )
    def oauth_signing_keys(self) -> list[SigningKeyInfo]:
        if self.stored.provider is not EhrProvider.EPIC:
            return []
        keys = self.stored.provider_settings(EhrProvider.EPIC).signing_keys
        return [SigningKeyInfo(kid=key.kid, created_at=key.created_at) for key in keys]

    @strawberry.field(
        description="The JWK Set URL to register with Epic: the gateway publishes the OAuth "
        "client's public keys there. Null until a signing key exists."
    )
    def oauth_jwks_url(self) -> str | None:
        if not self.oauth_signing_keys():
            return None
        return jwks_url(self.context, self.stored.tenant_id)

    @strawberry.field(description="Header settings of the active EHR.")
    def headers(self) -> HeaderSettings | None:
        return self._block(SettingsBlock.HEADERS, "headers")  # type: ignore[no-any-return]

    @strawberry.field(description="The Patient Restriction Information Expression.")
    def patient_restriction(self) -> PatientRestrictionType:
        restriction, extra = self._stored_patient_restriction()
        return PatientRestrictionType.from_pydantic(restriction, extra=extra)

    @strawberry.field(description="FHIR settings of the active EHR (null for Ellkay).")
    def fhir(self) -> FhirSettings | None:
        return self._block(SettingsBlock.FHIR, "fhir")  # type: ignore[no-any-return]

    @strawberry.field(description="Settings specific to the active EHR.")
    def ehr(self) -> EhrSettings | None:
        return self._block(SettingsBlock.EHR, "ehr")  # type: ignore[no-any-return]

    @strawberry.field(description="OAuth settings of the active EHR (Epic only).")
    def oauth(self) -> OAuthSettings | None:
        return self._block(SettingsBlock.OAUTH, "oauth")  # type: ignore[no-any-return]


@strawberry.type(
    description="One tenant's current integration settings, as the active EHR provider sees "
    "them. Blocks of other providers are kept and come back when the tenant switches back."
)
class IntegrationSettings(SettingsView):
    id: strawberry.ID = strawberry.field(
        description="Identifies the tenant's current settings for normalised caches (Apollo "
        "Client, urql): the same in every version, so the settings a mutation returns replace "
        "the cached ones. Opaque: do not parse it."
    )

    @staticmethod
    def identity(settings: TenantSettings) -> str:
        return f"IntegrationSettings:{settings.tenant_id}"


@strawberry.type(
    description="A tenant's integration settings as stored at one version (history, change "
    "events): a type of its own, so normalised caches never mistake it for the current settings."
)
class SettingsSnapshot(SettingsView):
    id: strawberry.ID = strawberry.field(
        description="Identifies this version of the tenant's settings for normalised caches: "
        "never the id of the current settings. Opaque: do not parse it."
    )

    @staticmethod
    def identity(settings: TenantSettings) -> str:
        return f"SettingsSnapshot:{settings.tenant_id}:{settings.version}"


# The fields of the settings whose resolvers only look a value up in the stored settings (no
# database, no permission of their own, nothing recorded), by GraphQL name: each gives the
# value its resolver converts (a stored model, a list, a plain value) and the values its
# GraphQL type adds to the model's (a block's id). The compiled read path (gql.compiled_reads)
# writes these straight to JSON; a field with a resolver not named here (observedJku, which
# reads the database) is left to graphql-core.
STORED_VALUES: dict[str, Callable[[SettingsView], tuple[Any, dict[str, Any]]]] = {
    "externalGateway": SettingsView._stored_external_gateway,
    "jkuKeySet": SettingsView._stored_jku_key_set,
    "patientRestriction": SettingsView._stored_patient_restriction,
    "headers": lambda view: view._stored_block(SettingsBlock.HEADERS, "headers"),
    "fhir": lambda view: view._stored_block(SettingsBlock.FHIR, "fhir"),
    "ehr": lambda view: view._stored_block(SettingsBlock.EHR, "ehr"),
    "oauth": lambda view: view._stored_block(SettingsBlock.OAUTH, "oauth"),
    "oauthSigningKeys": lambda view: (view.oauth_signing_keys(), {}),
    "oauthJwksUrl": lambda view: (view.oauth_jwks_url(), {}),
}
