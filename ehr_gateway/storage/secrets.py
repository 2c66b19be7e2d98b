"""Secrets at rest: AES-GCM encryption with a configured key, and keyed fingerprints."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ehr_gateway.ehr.common import SettingsBlock
from ehr_gateway.ehr.secret import StoredSecret, field_binding, signing_key_binding

KEY_FILE = "encryption.key"
# HKDF info of the key that MACs history and audit entries (storage.chain).
_CHAIN_MAC_INFO = b"ehr-gateway history and audit chain MAC v1"
FINGERPRINT_DIGITS = 16


class SecretBoxError(ValueError):
    """The encryption key is missing or malformed."""


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"ehrgw-key-id" + key).hexdigest()[:12]


def _decode(encoded: str, name: str) -> bytes:
    try:
        key = base64.b64decode(encoded.strip(), validate=True)
    except ValueError:
        raise SecretBoxError(f"{name} is not valid base64") from None
    if len(key) != 32:
        raise SecretBoxError(f"{name} must be 32 bytes (base64-encoded)")
    return key


class ChainKeys:
    """MAC keys derived from the encryption keys: the current one signs, any of them verifies.

    A key's id is that of the encryption key it is derived from, as secrets' key ids are."""

    def __init__(self, current: bytes, previous: Sequence[bytes] = ()) -> None:
        self.key_id = key_id(current)
        self._keys = {key_id(key): _derive(key) for key in [*previous, current]}

    def sign(self, message: bytes) -> str:
        return hmac.new(self._keys[self.key_id], message, hashlib.sha256).hexdigest()

    def check(self, key: str, message: bytes, mac: str) -> bool | None:
        """Whether ``mac`` is the MAC of ``message`` under key ``key``; None if that key is not
        configured."""
        secret = self._keys.get(key)
        if secret is None:
            return None
        expected = hmac.new(secret, message, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, mac)


def _derive(encryption_key: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_CHAIN_MAC_INFO).derive(
        encryption_key
    )


def new_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


class SecretBox:
    """Encrypts write-only secrets under the current key; opens them under any key it holds
    (older keys are kept while `ehr-gateway rotate-secrets` re-encrypts). The key id is derived
    from the key, so ciphertext says which key it needs without revealing it."""

    def __init__(self, key: bytes, previous: list[bytes] | None = None) -> None:
        if len(key) != 32 or any(len(old) != 32 for old in previous or []):
            raise SecretBoxError("an encryption key must be 32 bytes (base64-encoded)")
        self._aead = AESGCM(key)
        self._mac_key = _mac_key(key)
        self.key_id = key_id(key)
        self._by_id = {key_id(k): AESGCM(k) for k in [*(previous or []), key]}
        self.chain = ChainKeys(key, previous or [])
        self._mac_keys = {key_id(k): _mac_key(k) for k in [*(previous or []), key]}

    @classmethod
    def from_base64(cls, encoded: str, previous: str | None = None) -> SecretBox:
        old = [
            _decode(part, "EHRGW_PREVIOUS_ENCRYPTION_KEYS")
            for part in (previous or "").split(",")
            if part.strip()
        ]
        return cls(_decode(encoded, "EHRGW_ENCRYPTION_KEY"), old)

    @classmethod
    def from_data_dir(cls, data_dir: Path) -> SecretBox:
        """The keys kept in the data dir, created (mode 0600) on first use: the embedded default.
        The file holds one base64 key per line, the current one first."""
        path = data_dir / KEY_FILE
        if not path.exists():
            data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            try:
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process created it first
                pass
            else:
                with os.fdopen(descriptor, "w") as key_file:
                    key_file.write(new_key() + "\n")
        lines = [line for line in path.read_text().split() if line]
        keys = [_decode(line, f"the key file {KEY_FILE}") for line in lines]
        if not keys:
            raise SecretBoxError(f"the key file {KEY_FILE} holds no key")
        return cls(keys[0], keys[1:])

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._by_id)

    def seal(
        self, plaintext: str, context: str, *, keep: StoredSecret | None = None
    ) -> StoredSecret:
        """Encrypt ``plaintext``; ``context`` (e.g. tenant and field) is bound as associated data
        so ciphertext cannot be moved to another tenant or field. With ``keep`` (the same value
        sealed before, being re-encrypted) its fingerprint and time stay, so a key rotation
        does not look like a change of value."""
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        fingerprint = None
        if keep is not None and not self._legacy(keep, plaintext):
            fingerprint = keep.fingerprint
        return StoredSecret(
            ciphertext=base64.b64encode(nonce + sealed).decode(),
            key_id=self.key_id,
            fingerprint=fingerprint or self.fingerprint(plaintext, context),
            updated_at=keep.updated_at if keep is not None else datetime.now(UTC),
        )

    def open(self, secret: StoredSecret, context: str) -> str:
        if secret.ciphertext is None:
            raise SecretBoxError("the secret is not set")
        aead = self._by_id.get(secret.key_id or self.key_id)
        if aead is None:
            raise SecretBoxError(
                f"the secret is encrypted with key {secret.key_id}, which is not configured"
            )
        raw = base64.b64decode(secret.ciphertext)
        return aead.decrypt(raw[:12], raw[12:], context.encode()).decode()

    def fingerprint(self, plaintext: str, context: str) -> str:
        """A MAC of the value bound to where it is kept (``context``: tenant, EHR, block and
        field): stable for one value in one place, unrelated across tenants and fields, so
        equal passwords of two tenants do not show as equal."""
        bound = len(context).to_bytes(4, "big") + context.encode() + plaintext.encode()
        return hmac.new(self._mac_key, bound, hashlib.sha256).hexdigest()[:FINGERPRINT_DIGITS]

    def holds(self, secret: StoredSecret, plaintext: str, context: str) -> bool:
        """Whether ``secret`` is ``plaintext`` (compared on the value, not the fingerprint,
        which may have been made under an older key)."""
        if secret.ciphertext is None:
            return False
        try:
            stored = self.open(secret, context)
        except (SecretBoxError, InvalidTag, ValueError):
            return False  # a value that cannot be opened any more is simply replaced
        return hmac.compare_digest(stored.encode(), plaintext.encode())

    def with_bound_fingerprint(self, secret: StoredSecret, context: str) -> StoredSecret | None:
        """``secret`` with its fingerprint bound to ``context`` if it still has one of the
        unbound kind the gateway made before (the same for a value in every tenant); None when
        there is nothing to change."""
        if secret.ciphertext is None:
            return None
        plaintext = self.open(secret, context)
        if not self._legacy(secret, plaintext):
            return None
        return secret.model_copy(update={"fingerprint": self.fingerprint(plaintext, context)})

    def _legacy(self, secret: StoredSecret, plaintext: str) -> bool:
        """Whether ``secret``'s fingerprint is the unbound MAC of the value under its own key."""
        mac_key = self._mac_keys.get(secret.key_id or self.key_id)
        if mac_key is None or secret.fingerprint is None:
            return secret.fingerprint is None
        unbound = hmac.new(mac_key, plaintext.encode(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(unbound[:FINGERPRINT_DIGITS], secret.fingerprint)


def _mac_key(key: bytes) -> bytes:
    return hashlib.sha256(b"ehrgw-fingerprint" + key).digest()


# Stored block names whose fields may be secrets, and the block each belongs to.
_BLOCKS = {"headers": SettingsBlock.HEADERS, "fhir": SettingsBlock.FHIR,
           "ehr": SettingsBlock.EHR, "oauth": SettingsBlock.OAUTH}  # fmt: skip


def stored_secrets(settings: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str]]:
    """Each stored secret of a settings document with the associated data it was sealed with."""
    for _, secret, binding in located_secrets(settings):
        yield secret, binding


def located_secrets(settings: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], str]]:
    """Each stored secret of a settings document with where it is (a dotted path, as
    ``changed_paths`` gives them) and the associated data it was sealed with. A part of
    another shape than a gateway writes (a database writer's edit) holds no secret: it is
    passed over, and the hash or seal that covers the document then tells it was edited."""
    tenant = settings["_id"]
    providers = settings.get("providers")
    if not isinstance(providers, dict):
        return
    for provider, blocks in providers.items():
        if not isinstance(blocks, dict):
            continue
        for name, block in _BLOCKS.items():
            fields = blocks.get(name)
            if not isinstance(fields, dict):
                continue
            for key, value in fields.items():
                if isinstance(value, dict) and value.get("ciphertext"):
                    path = f"providers.{provider}.{name}.{key}"
                    yield path, value, field_binding(tenant, provider, block.value, key)
        signing_keys = blocks.get("signingKeys")
        for signing_key in signing_keys if isinstance(signing_keys, list) else []:
            if not isinstance(signing_key, dict) or not isinstance(signing_key.get("kid"), str):
                continue
            sealed = signing_key.get("privateJwk")
            if isinstance(sealed, dict) and sealed.get("ciphertext"):
                path = f"providers.{provider}.signingKeys.{signing_key['kid']}"
                yield path, sealed, signing_key_binding(tenant, provider, signing_key["kid"])
