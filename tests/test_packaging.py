"""The wheel ships the product and nothing else: no benchmarks, no test helpers, no fakes.

Built offline with the installed setuptools from a copy of the tree, so the build leaves nothing
behind in the checkout."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("app", "agents", "capture", "storage", "ui")
DEV_ONLY = ("bench", "tests")


@pytest.mark.slow
def test_the_wheel_leaves_out_bench_tests_and_every_fakes_module(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "build_hooks.py"):
        shutil.copy2(ROOT / name, src / name)
    for package in SHIPPED + DEV_ONLY:
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "dist"
    out.mkdir()
    build = f"from setuptools import build_meta; print(build_meta.build_wheel({str(out)!r}))"
    done = subprocess.run(
        [sys.executable, "-c", build], cwd=src, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    wheel = out / done.stdout.strip().splitlines()[-1]
    names = zipfile.ZipFile(wheel).namelist()

    tops = {name.split("/")[0] for name in names if "/" in name}
    assert set(SHIPPED) <= tops
    assert not tops & set(DEV_ONLY)
    assert not [n for n in names if n.rsplit("/", 1)[-1] in ("fakes.py", "build_hooks.py")]
    for module in ("storage/store.py", "capture/service.py", "app/capture_cli.py", "ui/app.py"):
        assert module in names, module
    assert any(n.startswith("agents/") and n.endswith(".txt") for n in names)  # prompts ship
    # The fakes exist in the tree (tests import them); only the wheel goes without.
    assert (src / "storage" / "fakes.py").exists() and (src / "capture" / "fakes.py").exists()
