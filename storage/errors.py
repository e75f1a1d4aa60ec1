"""Errors a user can meet, each with a message a person understands."""


class EngramError(Exception):
    """Base of every error Engram shows to a user."""


class InvalidText(EngramError, ValueError):
    """Text that cannot become a memory: empty, too long, binary or not UTF-8."""


class NotFound(EngramError, KeyError):
    """An id that names no memory (or event, or history entry)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "not found"


class CoreLimitExceeded(EngramError, ValueError):
    """A core block would pass its character limit; it is never truncated silently."""


class StoreCorrupt(EngramError):
    """A data file is not what Engram wrote; it was left untouched."""


class StoreLocked(EngramError):
    """Another process holds the data folder."""


class VaultKeyMissing(EngramError):
    """Encrypted vault values exist but the key that encrypted them cannot be found."""


class ModelUnavailable(EngramError):
    """A model (embedding or chat) cannot be loaded."""


class ProtectedMemory(EngramError):
    """An agent tried to change or delete what the user wrote (or imported); it never may."""
