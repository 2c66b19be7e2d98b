"""What a write returns: saved, refused with reasons, or refused because it was stale."""

from __future__ import annotations

from dataclasses import dataclass

from ehr_gateway.ehr.blocks import TenantSettings
from ehr_gateway.ehr.errors import FieldError
from ehr_gateway.storage.repository import Conflict


@dataclass(frozen=True, slots=True)
class Saved:
    settings: TenantSettings


@dataclass(frozen=True, slots=True)
class Failed:
    errors: tuple[FieldError, ...]

    @classmethod
    def one(cls, path: tuple[str, ...], code: str, message: str) -> Failed:
        return cls((FieldError(path, code, message),))


Outcome = Saved | Failed | Conflict
