"""Nothing acknowledged is lost when the process is killed mid-write (real SQLite + Chroma)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from storage.fakes import HashEmbedder
from storage.records import MemoryType
from storage.store import MemoryStore
from storage.vector_chroma import ChromaVectorIndex

WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from storage.fakes import HashEmbedder
    from storage.records import SemanticMemory
    from storage.store import MemoryStore
    from storage.vector_chroma import ChromaVectorIndex

    store = MemoryStore.open(Path(sys.argv[1]), HashEmbedder(), ChromaVectorIndex.persistent)
    i = 0
    while True:
        mem = store.add(SemanticMemory(name=f"fact {i}", summary=f"crash canary number {i}"))
        print(mem.id, flush=True)
        i += 1
    """
)


@pytest.mark.real
def test_kill_9_mid_write_loses_no_acknowledged_memory(engram_home: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(engram_home)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert proc.stdout is not None
    acked = [proc.stdout.readline().strip() for _ in range(40)]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    assert all(acked)

    store = MemoryStore.open(  # repairs anything half-indexed
        engram_home, HashEmbedder(), ChromaVectorIndex.persistent
    )
    try:
        assert len(store.get_many(acked)) == len(acked)
        assert store.stats()["unindexed"] == 0
        for n in (0, 19, 39):
            hits = store.search(f"crash canary number {n}", types=[MemoryType.SEMANTIC], k=3)
            assert acked[n] in [h.record.id for h in hits]
            assert "vector" in next(h for h in hits if h.record.id == acked[n]).ranks
    finally:
        store.close()
