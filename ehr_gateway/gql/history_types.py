"""A tenant's settings history, newest first."""

from __future__ import annotations

from datetime import datetime

import strawberry

from ehr_gateway.gql.enums import SettingsBlock
from ehr_gateway.gql.settings_types import SettingsSnapshot


@strawberry.type(description="One stored version of a tenant's settings.")
class SettingsVersion:
    id: strawberry.ID = strawberry.field(
        description="Identifies this stored version for normalised caches: a stored version "
        "never changes, so every page that lists it shows the same entry. Opaque: do not parse it."
    )
    version: int = strawberry.field(description="The version number, from 1.")
    changed_at: datetime = strawberry.field(description="When it was stored.")
    actor: str = strawberry.field(description="Who stored it.")
    changed_blocks: list[SettingsBlock] = strawberry.field(
        description="The blocks this version changed."
    )
    changed_paths: list[str] = strawberry.field(
        description="The stored fields that changed, e.g. providers.EPIC.fhir.ssnIdentifier. "
        "Names only: values of secrets are never shown."
    )
    settings: SettingsSnapshot = strawberry.field(description="The settings as of this version.")


@strawberry.type(description="A page of versions, newest first.")
class SettingsHistoryPage:
    versions: list[SettingsVersion] = strawberry.field(description="The versions, newest first.")
    has_more: bool = strawberry.field(description="Whether older versions remain.")
    next_before: int | None = strawberry.field(
        description="Pass as `before` to get the next (older) page; null on the last page."
    )
