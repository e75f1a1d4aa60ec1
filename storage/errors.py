"""Errors a user can meet, each with a message a person understands."""

import errno


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


class StorageUnavailable(EngramError):
    """The data folder, or a file in it, cannot be read or written: read-only, no permission,
    a file where a folder should be. Nothing is wrong with the data; the place is."""


class DiskFull(StorageUnavailable):
    """The disk (or quota) holding the data folder is full; the store itself is healthy."""


class VaultKeyDamaged(EngramError):
    """The vault key file exists but holds no usable key (empty, truncated, overwritten)."""


class DamagedRecord(StoreCorrupt):
    """One stored memory cannot be read back (bit rot, a hand edit); the others are fine."""


class ExportFailed(EngramError):
    """An export cannot be written where it was asked for; nothing there was overwritten."""


def from_os_error(exc: OSError, place: object = None) -> StorageUnavailable:
    """The named error, in words, for an OSError met while using `place` (a path)."""
    where = exc.filename or place or "the data folder"
    why = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull(
            f"the disk holding {where} is full ({why}); free some space and try again "
            "(what is stored is intact; the change that failed was not saved)"
        )
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return StorageUnavailable(
            f"{where} cannot be written: it is read-only or not yours ({why}). Make it "
            "writable (chmod u+rwx on the folder), or for the data folder set ENGRAM_HOME "
            "to a folder you can write"
        )
    if exc.errno == errno.ENOTDIR:
        return StorageUnavailable(
            f"{where} cannot be a folder: part of that path is a file ({why}); set ENGRAM_HOME "
            "to a folder, or move that file away"
        )
    if exc.errno in (errno.EEXIST, errno.EISDIR):
        return StorageUnavailable(
            f"{where} is in the way ({why}): Engram expected "
            f"{'a folder' if exc.errno == errno.EEXIST else 'a file'} there; move it aside"
        )
    return StorageUnavailable(f"{where} cannot be used: {why}")


def from_sqlite_error(exc: Exception, path: object) -> EngramError | None:
    """The named error for an SQLite error that says the place is at fault (full disk,
    read-only, busy), not the data; None when it is not one of those (then the data may be)."""
    text = str(exc).lower()
    if "disk is full" in text:
        return DiskFull(
            f"the disk holding {path} is full; free some space and try again (the database "
            "is intact; the change that failed was not saved)"
        )
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return StorageUnavailable(
            f"{path} cannot be written: its folder is read-only or not yours ({exc}); Engram "
            "writes there even to search. Make the folder writable (chmod u+rwx) or set "
            "ENGRAM_HOME to a folder you can write"
        )
    if "locked" in text or "busy" in text:
        return StoreLocked(f"{path} is busy in another process ({exc}); close it and try again")
    return None
