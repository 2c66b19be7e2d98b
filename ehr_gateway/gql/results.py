"""What mutations return: the SettingsResult union. Expected failures are data, not errors."""

from __future__ import annotations

from typing import Annotated

import strawberry

from ehr_gateway.ehr.errors import FieldError as DomainFieldError
from ehr_gateway.gql.settings_types import IntegrationSettings
from ehr_gateway.resolvers.context import Context
from ehr_gateway.resolvers.outcomes import Failed, Outcome
from ehr_gateway.storage.repository import Conflict


@strawberry.type(description="Why a value was refused. The message never repeats the value.")
class FieldError:
    path: list[str] = strawberry.field(
        description="Where the refused value is, from the mutation's argument down, e.g. "
        '["input", "epic", "ssnIdentifier"]. A rule between two settings is reported at the one '
        "the update sent (the other is named in the message); when both were sent, at the one "
        "the rule limits (e.g. epicMaximumSlotSearchDateRangeInDays, not the total)."
    )
    code: str = strawberry.field(
        description="A stable, machine-readable reason, e.g. INVALID_URN, TOO_LONG, WRONG_PROVIDER."
    )
    message: str = strawberry.field(description="A human-readable explanation.")

    @classmethod
    def of(cls, error: DomainFieldError) -> FieldError:
        return cls(path=list(error.path), code=error.code, message=error.message)


@strawberry.type(description="The change was stored (or changed nothing, and the version stays).")
class SettingsSaved:
    settings: IntegrationSettings = strawberry.field(
        description="The settings as stored, with their new version."
    )


@strawberry.type(description="The change was refused; nothing was stored.")
class ValidationFailed:
    errors: list[FieldError] = strawberry.field(description="Every refused value.")

    @classmethod
    def of(cls, failed: Failed) -> ValidationFailed:
        return cls(errors=[FieldError.of(error) for error in failed.errors])


@strawberry.type(
    description="The change was refused because the settings changed since expectedVersion; "
    "nothing was stored. Re-read, re-apply, and send the current version."
)
class VersionConflict:
    current_version: int = strawberry.field(description="The version stored now.")


SettingsResult = Annotated[
    SettingsSaved | ValidationFailed | VersionConflict,
    strawberry.union(
        "SettingsResult",
        description="Saved, or refused with nothing stored: a value was invalid "
        "(ValidationFailed) or the settings changed since expectedVersion (VersionConflict).",
    ),
]


def settings_result(outcome: Outcome, context: Context) -> SettingsResult:
    if isinstance(outcome, Failed):
        return ValidationFailed.of(outcome)
    if isinstance(outcome, Conflict):
        return VersionConflict(current_version=outcome.current_version)
    return SettingsSaved(settings=IntegrationSettings.of(outcome.settings, context))
