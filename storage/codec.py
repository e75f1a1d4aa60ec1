"""Records to and from the JSON kept in SQLite, with vault secrets encrypted on the way in.

Every path that persists a record (rows, history, exports) goes through here, so no path can
write a secret in plain text by forgetting to encrypt it.
"""

from __future__ import annotations

import json
from typing import Any

from storage.crypto import VaultCipher
from storage.errors import DamagedRecord
from storage.records import MemoryType, Record, VaultEntry, record_class


class RecordCodec:
    def __init__(self, cipher: VaultCipher) -> None:
        self._cipher = cipher

    def to_dict(self, record: Record) -> dict[str, Any]:
        data = record.model_dump(mode="json")
        if isinstance(record, VaultEntry) and not VaultCipher.is_encrypted(record.secret_value):
            data["secret_value"] = self._cipher.encrypt(record.secret_value)
        return data

    def encode(self, record: Record) -> str:
        return json.dumps(self.to_dict(record), ensure_ascii=False)

    def decode(self, memory_type: MemoryType | str, data: dict[str, Any]) -> Record:
        """Validate a stored or imported record (secrets plain or encrypted with our key)."""
        if memory_type == MemoryType.KNOWLEDGE_VAULT and VaultCipher.is_encrypted(
            data.get("secret_value", "")
        ):
            data = {**data, "secret_value": self._cipher.decrypt(data["secret_value"])}
        return record_class(memory_type).model_validate(data)

    def decode_json(self, memory_type: MemoryType | str, text: str) -> Record:
        return self.decode(memory_type, json.loads(text))

    def decode_row(self, memory_type: MemoryType | str, text: str, memory_id: str) -> Record:
        """A stored row back as its record; a row that no longer parses (bit rot, a hand
        edit) is a `DamagedRecord` naming it, never a JSON or validation traceback."""
        try:
            return self.decode(memory_type, json.loads(text))
        except (ValueError, TypeError, KeyError, RecursionError) as exc:  # ValidationError too
            reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
            raise DamagedRecord(
                f"memory {memory_id} is damaged in the database and cannot be read ({reason}); "
                "the other memories are fine. `engram doctor` lists every damaged one, "
                "`engram export` skips them, and `engram history " + memory_id + "` shows its "
                "last good text"
            ) from exc

    def export_dict(self, record: Record, reveal_secrets: bool) -> dict[str, Any]:
        return record.model_dump(mode="json") if reveal_secrets else self.to_dict(record)
