"""Write-only secrets as the settings hold them: ciphertext and what may be shown about it."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from pydantic import Field, computed_field
from pydantic.fields import FieldInfo

from ehr_gateway.ehr.fields import SettingsModel


class StoredSecret(SettingsModel):
    """A write-only secret. Only ciphertext is stored; the API shows whether it is set, when it
    was last set, and a keyed fingerprint that tells two values apart without revealing them.
    A settings field of this type must carry the ``SECRET`` marker (``SettingsModel`` checks)."""

    is_write_only_secret: ClassVar[bool] = True

    ciphertext: str | None = Field(default=None, description="AES-GCM ciphertext, base64.")
    key_id: str | None = Field(default=None, description="Id of the key that encrypted it.")
    fingerprint: str | None = Field(
        default=None,
        description="Keyed fingerprint (HMAC-SHA256, first 16 hex digits) of the value, bound "
        "to its tenant and field: it changes when the value changes; equal values in other "
        "tenants or fields have unrelated fingerprints; the value cannot be recovered from it.",
    )
    updated_at: datetime | None = Field(default=None, description="When the value was last set.")

    @computed_field(description="Whether a value is set.")  # type: ignore[prop-decorator]
    @property
    def is_set(self) -> bool:
        return self.ciphertext is not None


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """Marks a write-only secret (``Annotated[StoredSecret, SECRET, ISSUED_KEY]``) that is a key
    another system issued: white space around it is never part of it, but a copy and paste
    brings it along, and a key kept with it is another key, which the issuer refuses at every
    call while the page (the value is write-only) shows nothing wrong. Refused when saved; a
    password, which may begin or end with a space, is kept verbatim."""


ISSUED_KEY = IssuedKey()


def is_issued_key(field: FieldInfo) -> bool:
    return any(isinstance(marker, IssuedKey) for marker in field.metadata)


@dataclass(frozen=True, slots=True)
class SentAsHeader:
    """Marks a write-only secret that is sent as an HTTP header's value: held to what a header
    value may hold (printable ASCII), as the header settings' plain values are, or it would be
    stored, counted as set, and fail every call to the EHR."""


SENT_AS_HEADER = SentAsHeader()


def is_sent_as_header(field: FieldInfo) -> bool:
    return any(isinstance(marker, SentAsHeader) for marker in field.metadata)


def has_padding(key: str) -> bool:
    """Whether ``key`` starts or ends with white space or an invisible format character (Unicode
    category Cf: a zero-width space, a byte order mark, a word joiner), which a copy from a web
    page, a PDF or a Windows text file brings along as it brings a space."""
    return key != key.strip() or any(
        unicodedata.category(end) == "Cf" for end in key[:1] + key[-1:]
    )


def field_binding(tenant_id: str, provider: str, block: str, field: str) -> str:
    """The associated data a block's secret field is sealed with: ciphertext moved to another
    tenant or field does not open."""
    return f"{tenant_id}:{provider}:{block}:{field}"


def signing_key_binding(tenant_id: str, provider: str, kid: str) -> str:
    """The associated data an OAuth private key is sealed with."""
    return f"{tenant_id}:{provider}:signing-key:{kid}"


# Validation-context keys. Exports never carry secrets, so a credential whose secret half is not
# set yet is a state a tenant can legitimately be in (after an import, or while the password is
# on its way); readiness names the missing half. Only a direct save that sends part of the pair
# is refused for leaving it incomplete: the user is at that form and can complete it.
SENT_FIELDS = "sent_fields"
IMPORTING = "importing"


def may_lack_secret(context: object, pair: set[str]) -> bool:
    """Whether a validation in ``context`` may leave the credential ``pair`` (camelCase keys)
    half set: a stored block being read, an import, or a save that sends neither key."""
    if not isinstance(context, dict):
        return False
    if context.get("stored") or context.get(IMPORTING):
        return True
    sent = context.get(SENT_FIELDS)
    return isinstance(sent, frozenset) and not pair & sent
