"""Prompts as package data: one text file per agent, read once."""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def load(name: str) -> str:
    """The prompt `name` (file agents/prompts/<name>.txt), stripped."""
    return resources.files(__name__).joinpath(f"{name}.txt").read_text(encoding="utf-8").strip()
