"""`engram` in a child process, as a user meets it (exit code, stderr, no traceback), with the
deterministic embedder and, unless asked for Chroma, the in-memory vector index: a child that
loads no model starts in about a second."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

DRIVER = """
import os, sys
from app import bootstrap
from storage.fakes import HashEmbedder, MemoryVectorIndex
bootstrap.make_embedder = lambda settings: HashEmbedder()
if not os.environ.get("ENGRAM_TEST_CHROMA"):
    bootstrap.make_index_factory = lambda settings: (lambda path: MemoryVectorIndex())
from app.cli import main
sys.exit(main(sys.argv[1:]))
"""


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str


def without_root_override() -> list[str]:
    """A command prefix that takes away root's power to write where permissions say no, so a
    read-only folder is read-only in a test run as root too (setpriv drops the capabilities
    from the bounding set before exec); nothing for other users."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed to test permissions as root"
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search,-fowner"]


def engram(
    home: Path,
    *argv: str | bytes,
    chroma: bool = False,
    read_only: bool = False,
    stdin: str | None = None,
) -> Ran:
    env = {
        **os.environ,
        "ENGRAM_HOME": str(home),
        "ENGRAM_KEYRING": "0",
        "PYTHONPATH": str(ROOT),
    }
    if chroma:
        env["ENGRAM_TEST_CHROMA"] = "1"
    prefix = without_root_override() if read_only else []
    proc = subprocess.run(
        [*prefix, sys.executable, "-c", DRIVER, *argv],
        env=env,
        cwd=ROOT,
        input=stdin.encode() if stdin is not None else None,
        capture_output=True,
        timeout=120,
        check=False,
    )
    return Ran(
        proc.returncode,
        proc.stdout.decode("utf-8", "replace"),
        proc.stderr.decode("utf-8", "replace"),
    )
