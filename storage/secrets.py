"""Secrets at rest: AES-GCM encryption with a configured key, and keyed fingerprints."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ehr.secret import StoredSecret

KEY_FILE = "encryption.key"


class SecretBoxError(ValueError):
    """The encryption key is missing or malformed."""


class SecretBox:
    """Encrypts write-only secrets. The key id is derived from the key, so ciphertext says which
    key it needs without revealing it."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise SecretBoxError("the encryption key must be 32 bytes (base64-encoded)")
        self._aead = AESGCM(key)
        self._mac_key = hashlib.sha256(b"ehrgw-fingerprint" + key).digest()
        self.key_id = hashlib.sha256(b"ehrgw-key-id" + key).hexdigest()[:12]

    @classmethod
    def from_base64(cls, encoded: str) -> SecretBox:
        try:
            return cls(base64.b64decode(encoded, validate=True))
        except ValueError:
            raise SecretBoxError("EHRGW_ENCRYPTION_KEY is not valid base64") from None

    @classmethod
    def from_data_dir(cls, data_dir: Path) -> SecretBox:
        """The key kept in the data dir, created (mode 0600) on first use: the embedded default."""
        path = data_dir / KEY_FILE
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as key_file:
                key_file.write(base64.b64encode(secrets.token_bytes(32)).decode())
        return cls.from_base64(path.read_text().strip())

    def seal(self, plaintext: str, context: str) -> StoredSecret:
        """Encrypt ``plaintext``; ``context`` (e.g. tenant and field) is bound as associated data
        so ciphertext cannot be moved to another tenant or field."""
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return StoredSecret(
            ciphertext=base64.b64encode(nonce + sealed).decode(),
            key_id=self.key_id,
            fingerprint=self.fingerprint(plaintext),
            updated_at=datetime.now(UTC),
        )

    def open(self, secret: StoredSecret, context: str) -> str:
        if secret.ciphertext is None:
            raise SecretBoxError("the secret is not set")
        raw = base64.b64decode(secret.ciphertext)
        return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()

    def fingerprint(self, plaintext: str) -> str:
        return hmac.new(self._mac_key, plaintext.encode(), hashlib.sha256).hexdigest()[:16]
