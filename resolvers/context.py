"""What every resolver needs: storage, the secret box and deployment settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from ehr.identifiers import IdentifierDefaults
from resolvers.broker import Broker
from resolvers.keys import KeySetCache
from resolvers.outbound import Outbound
from storage.repository import SettingsRepository
from storage.secrets import SecretBox


@dataclass(frozen=True, slots=True)
class Deployment:
    """Settings of this deployment that shape what resolvers do."""

    public_base_url: str
    identifier_defaults: IdentifierDefaults
    allow_insecure_http: bool = False


@dataclass(frozen=True, slots=True)
class Context:
    repository: SettingsRepository
    secrets: SecretBox
    deployment: Deployment
    broker: Broker
    outbound: Outbound | None = None  # None where no outbound call is made (some tests)
    key_cache: KeySetCache = field(default_factory=KeySetCache)
    actor: str = "anonymous"

    @property
    def validation_context(self) -> dict[str, object]:
        return {"allow_insecure_http": self.deployment.allow_insecure_http}
