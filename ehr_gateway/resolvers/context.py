"""What every resolver needs: storage, the secret box, deployment settings, and who is asking."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from ehr_gateway.ehr.blocks import TenantSettings
from ehr_gateway.ehr.identifiers import IdentifierDefaults
from ehr_gateway.ehr.jwks import LEEWAY_S
from ehr_gateway.runtime.access import Permission, Principal
from ehr_gateway.runtime.broker import Broker
from ehr_gateway.runtime.denials import Denials
from ehr_gateway.runtime.followed_tenants import FollowedTenants
from ehr_gateway.runtime.history_reads import HISTORY_READS_PER_CONNECTION, HistoryReads
from ehr_gateway.runtime.jku_observation_log import JkuObservations
from ehr_gateway.runtime.key_set_cache import KeySetCache
from ehr_gateway.runtime.outbound import Outbound
from ehr_gateway.runtime.settings_cache import SettingsCache
from ehr_gateway.storage.observations import Observation
from ehr_gateway.storage.repository import SettingsRepository
from ehr_gateway.storage.secrets import SecretBox


@dataclass(frozen=True, slots=True)
class Deployment:
    """Settings of this deployment that shape what resolvers do."""

    public_base_url: str
    identifier_defaults: IdentifierDefaults
    allow_insecure_http: bool = False
    clock_skew_s: int = LEEWAY_S  # leeway for the time claims of Epic's JWTs


@dataclass(slots=True)
class RequestRecord:
    """What one HTTP request did, for the layers around its execution: the tenants whose
    settings it read and at which version (0: none yet), its operation's metrics label
    (``refused`` if it never ran), and whether its response may be cached. It also carries the
    request's ``Idempotency-Key`` header to its mutations (None: no such header; the values,
    as sent, when there are several)."""

    versions: dict[str, int] = field(default_factory=dict)
    operation: str = "refused"
    cacheable: bool = False
    idempotency_keys: list[str] | None = None
    # It read something that changes without a new settings version (observed JKUs): its
    # response must not be cached by version.
    unversioned: bool = False
    # The observed JKUs it read, by tenant: read once however many aliases ask.
    observed_jku: dict[str, asyncio.Future[list[Observation]]] = field(default_factory=dict)

    def read(self, tenant_id: str, settings: TenantSettings | None) -> None:
        self.versions[tenant_id] = 0 if settings is None else settings.version


@dataclass(slots=True)
class Context:
    """The process's services plus one request's caller. The app makes one per request (or
    WebSocket connection) with ``for_request``."""

    repository: SettingsRepository
    secrets: SecretBox
    deployment: Deployment
    broker: Broker
    outbound: Outbound | None = None  # None where no outbound call is made (some tests)
    key_cache: KeySetCache = field(default_factory=KeySetCache)
    # The JKUs the base path URLs observed (None where nothing serves them: some tests).
    jku_observations: JkuObservations | None = None
    settings_cache: SettingsCache = field(default_factory=SettingsCache)
    denials: Denials = field(default_factory=Denials)
    principal: Principal | None = None  # None: not authenticated (yet)
    request_id: str = ""
    # Set by the WebSocket protocols from connection_init; carries the bearer token.
    connection_params: dict[str, Any] | None = None
    record: RequestRecord | None = None  # HTTP requests only
    # The process's bound on subscriptions' history reads; and this request's or WebSocket
    # connection's own.
    history_reads: HistoryReads = field(default_factory=HistoryReads)
    history_slots: asyncio.Semaphore = field(
        default_factory=lambda: asyncio.Semaphore(HISTORY_READS_PER_CONNECTION)
    )
    followed_tenants: FollowedTenants = field(default_factory=FollowedTenants)

    def for_request(
        self,
        request_id: str,
        principal: Principal | None = None,
        record: RequestRecord | None = None,
    ) -> Context:
        # Every field named (tests/resolvers/test_context.py checks that none is left out):
        # dataclasses.replace looks the fields up and checks them on every call, about ten
        # times the cost of the copy itself, once per request.
        return Context(
            repository=self.repository,
            secrets=self.secrets,
            deployment=self.deployment,
            broker=self.broker,
            outbound=self.outbound,
            key_cache=self.key_cache,
            jku_observations=self.jku_observations,
            settings_cache=self.settings_cache,
            denials=self.denials,
            principal=principal,
            request_id=request_id,
            connection_params=None,
            record=record,
            history_reads=self.history_reads,
            history_slots=asyncio.Semaphore(HISTORY_READS_PER_CONNECTION),
            followed_tenants=FollowedTenants(),
        )

    @property
    def actor(self) -> str:
        return self.principal.subject if self.principal else "system"

    def allows(self, permission: Permission, tenant_id: str | None) -> bool:
        return self.principal is not None and self.principal.allows(permission, tenant_id)

    @property
    def validation_context(self) -> dict[str, object]:
        return {"allow_insecure_http": self.deployment.allow_insecure_http}
