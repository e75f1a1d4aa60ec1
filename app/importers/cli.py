"""`engram import-chat`, `engram import-files`, `engram import-browser`."""

from __future__ import annotations

from typing import Any


def register(sub: Any) -> None:
    """Filled in with the importers."""
