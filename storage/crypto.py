"""Encryption at rest for knowledge-vault secrets (Fernet: AES-128-CBC + HMAC-SHA256).

The key lives in the OS keyring when one works, else in a 0600 key file in the data folder. The
database records which, so a key that went missing is an error, never a silently new key that
would make every stored secret unreadable.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from storage.errors import VaultKeyDamaged, VaultKeyMissing

PREFIX = "enc:v1:"
_SERVICE = "engram-vault"


def _keyring_usable() -> bool:
    if os.environ.get("ENGRAM_KEYRING", "1") == "0":
        return False
    try:
        import keyring
        from keyring.backends import fail

        backend = keyring.get_keyring()
        if isinstance(backend, fail.Keyring) or getattr(backend, "priority", 0) <= 0:
            return False
        backend.get_password(_SERVICE, "probe")  # a locked or absent D-Bus raises here
        return True
    except Exception:
        return False


class VaultCipher:
    """Encrypts and decrypts single string values."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    @staticmethod
    def is_encrypted(value: str) -> bool:
        return value.startswith(PREFIX)

    def encrypt(self, value: str) -> str:
        return PREFIX + self._fernet.encrypt(value.encode("utf-8")).decode("ascii")

    def decrypt(self, value: str) -> str:
        if not value.startswith(PREFIX):
            raise ValueError("value is not an Engram-encrypted token")
        try:
            return self._fernet.decrypt(value[len(PREFIX) :].encode("ascii")).decode("utf-8")
        except InvalidToken as exc:
            raise VaultKeyMissing(
                "a vault value was encrypted with another key than this store's"
            ) from exc


def _read_key_file(key_file: Path) -> bytes:
    """The key in `key_file`, checked: an empty or garbled file is a named error that says
    what it means, not a base64 traceback (and never silently a new key)."""
    key = key_file.read_bytes().strip()
    try:
        Fernet(key)
    except (ValueError, TypeError) as exc:
        what = "empty" if not key else "not a vault key (damaged or overwritten)"
        raise VaultKeyDamaged(
            f"the vault key file {key_file} is {what}. Restore it from a backup: without it "
            "the vault secrets cannot be decrypted (nothing was changed)"
        ) from exc
    return key


def load_or_create_key(data_dir: Path, store_id: str, location: str | None) -> tuple[bytes, str]:
    """Return (key, where). `location` is what the database recorded, None for a new store."""
    key_file = data_dir / "vault.key"
    if location == "keyring" or (location is None and _keyring_usable()):
        import keyring

        try:
            stored = keyring.get_password(_SERVICE, store_id)
        except Exception as exc:
            raise VaultKeyMissing(f"the OS keyring cannot be read: {exc}") from exc
        if stored:
            return stored.encode("ascii"), "keyring"
        if location == "keyring":
            raise VaultKeyMissing(
                f"the vault key for store {store_id} is missing from the OS keyring; "
                "vault secrets cannot be decrypted until it is restored"
            )
        key = Fernet.generate_key()
        keyring.set_password(_SERVICE, store_id, key.decode("ascii"))
        return key, "keyring"
    if key_file.exists():
        return _read_key_file(key_file), "file"
    if location == "file":
        raise VaultKeyMissing(
            f"the vault key file {key_file} is missing; vault secrets cannot be decrypted "
            "until it is restored"
        )
    key = Fernet.generate_key()
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
        fh.flush()
        os.fsync(fh.fileno())
    with contextlib.suppress(OSError):
        os.chmod(key_file, 0o600)
    return key, "file"
