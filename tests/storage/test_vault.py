"""Vault secrets are encrypted at rest: no file in the data folder holds one in plain text."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from storage.crypto import VaultCipher
from storage.errors import VaultKeyMissing
from storage.fakes import HashEmbedder
from storage.records import VaultEntry
from storage.store import MemoryStore

SECRET = "sk-live-PLAINTEXT-canary-7f3a9c"


def _grep(folder: Path, needle: bytes) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes()]


@pytest.mark.real
def test_no_plaintext_secret_anywhere_in_the_data_folder(
    real_store: MemoryStore, engram_home: Path
) -> None:
    entry = real_store.add(
        VaultEntry(
            caption="payment API key",
            secret_value=SECRET,
            sensitivity="high",
            source="stripe dashboard",
        )
    )
    real_store.update(entry.id, secret_value=SECRET + "-rotated")
    real_store.delete(entry.id)
    real_store.undo()  # history rows and restored rows must be encrypted too
    assert real_store.get(entry.id).secret_value == SECRET + "-rotated"  # type: ignore[attr-defined]
    assert real_store.search("payment API key")[0].record.id == entry.id
    real_store.close()  # checkpoint nothing away: WAL and -shm files are grepped as they are
    assert _grep(engram_home, SECRET.encode()) == []
    assert _grep(engram_home, b"PLAINTEXT-canary") == []
    key_file = engram_home / "vault.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((engram_home / "engram.sqlite3").stat().st_mode) == 0o600


def test_missing_key_is_an_error_not_a_new_key(engram_home: Path) -> None:
    from storage.fakes import MemoryVectorIndex

    store = MemoryStore.open(engram_home, HashEmbedder(), lambda _p: MemoryVectorIndex())
    store.add(VaultEntry(caption="wifi", secret_value="hunter2"))
    store.close()
    os.remove(engram_home / "vault.key")
    with pytest.raises(VaultKeyMissing, match=r"vault key file .* is missing"):
        MemoryStore.open(engram_home, HashEmbedder(), lambda _p: MemoryVectorIndex())
    assert not (engram_home / "vault.key").exists()


def test_cipher_round_trip_and_foreign_tokens() -> None:
    from cryptography.fernet import Fernet

    one, other = VaultCipher(Fernet.generate_key()), VaultCipher(Fernet.generate_key())
    token = one.encrypt("pässwörd")
    assert VaultCipher.is_encrypted(token) and "pässwörd" not in token
    assert one.decrypt(token) == "pässwörd"
    with pytest.raises(VaultKeyMissing, match="another key"):
        other.decrypt(token)
