"""The resolvers' context, built as the app builds it but without the app: the repository on the
run's database, a secret box, the deployment, a broker, an outbound client for loopback servers,
and a caller. No GraphQL, no HTTP in front of the functions under test."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import replace
from pathlib import Path

import pytest

from ehr_gateway.ehr.identifiers import IdentifierDefaults
from ehr_gateway.resolvers.context import Context, Deployment
from ehr_gateway.runtime.access import Principal, Role
from ehr_gateway.runtime.broker import Broker
from ehr_gateway.runtime.outbound import Outbound, OutboundPolicy
from ehr_gateway.storage.client import connect
from ehr_gateway.storage.repository import SettingsRepository
from ehr_gateway.storage.secrets import SecretBox

PUBLIC_BASE_URL = "https://gateway.example.test"
# A database of their own for the run, not the gateways' (tests keep apart by tenant id): each
# test seals secrets under a key of its own, and a gateway starting on a database holding
# secrets under keys it lacks stops in its one-time secrets migration.
RESOLVERS_DATABASE = f"resolvers_{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def context(database_url: str, tmp_path: Path) -> AsyncIterator[Context]:
    """Staff with every role, on the resolver tests' database."""
    client = connect(database_url)
    box = SecretBox.from_data_dir(tmp_path)
    repository = SettingsRepository(client, RESOLVERS_DATABASE, box.chain)
    await repository.prepare()
    # Plain http and private addresses: the EHR servers the tests start are on loopback.
    outbound = Outbound.open(OutboundPolicy(allow_insecure_http=True, allow_private=True))
    deployment = Deployment(PUBLIC_BASE_URL, IdentifierDefaults(), allow_insecure_http=True)
    staff = Principal("staff", frozenset(Role), None, time.time() + 600)
    yield Context(
        repository, box, deployment, Broker(), outbound,
        principal=staff, request_id=f"req-{uuid.uuid4().hex[:8]}",
    )  # fmt: skip
    await outbound.client.aclose()
    await client.close()


def as_caller(context: Context, roles: Iterable[Role], tenants: Iterable[str]) -> Context:
    """The same services, for a caller with ``roles`` on ``tenants``."""
    principal = Principal("caller", frozenset(roles), frozenset(tenants), time.time() + 600)
    return replace(context, principal=principal)


@pytest.fixture
def tenant_id_2() -> str:
    """A second tenant: a promotion's target."""
    return f"tenant-{uuid.uuid4().hex[:8]}"
