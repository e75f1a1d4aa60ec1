"""Importing the user's past: chat exports, documents and browser history, from small fixture
files each test writes itself (no real personal data)."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from app import bootstrap
from app.cli import main
from app.importers import base, browser, chats, documents
from app.importers.base import ImportFailed, import_items
from storage.fakes import HashEmbedder, MemoryVectorIndex
from storage.records import MemoryType, ResourceMemory
from storage.store import EventHit, MemoryStore


def _chat(store: MemoryStore, path: Path, fmt: str | None = None, **kw: Any) -> base.Summary:
    fmt = fmt or chats.detect(path)
    return import_items(store, fmt, path, chats.parser(path, fmt, **kw), progress=False)


def _events(store: MemoryStore) -> list[Any]:
    return [r["event"] for r in store.events.export_rows()]


def _conversation(title: str, messages: list[tuple[str, str, Any]], at: float) -> dict[str, Any]:
    mapping: dict[str, Any] = {"root": {"id": "root", "message": None, "children": []}}
    for n, (role, text, parts) in enumerate(messages):
        mapping[f"{title}-{n}"] = {
            "id": f"{title}-{n}",
            "message": {
                "id": f"{title}-m{n}",
                "author": {"role": role},
                "create_time": at + n * 60,
                "content": parts or {"content_type": "text", "parts": [text]},
            },
        }
    return {"title": title, "create_time": at, "mapping": mapping}


def _chatgpt_file(path: Path) -> Path:
    data = [
        _conversation(
            "Trip planning",
            [
                ("system", "You are ChatGPT", None),
                ("user", "Plan a weekend in Lisbon with tram rides", None),
                ("assistant", "Day one: tram 28 to Alfama", None),
                ("user", "", {"content_type": "image_asset_pointer", "parts": [{"a": 1}]}),
            ],
            1_700_000_000.0,
        ),
        _conversation(
            "Sourdough", [("user", "My starter smells of acetone", None)], 1_700_100_000.0
        ),
    ]
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


def test_chatgpt_export_is_searchable_at_once_and_a_second_import_adds_nothing(
    fake_store: MemoryStore, tmp_path: Path
) -> None:
    path = _chatgpt_file(tmp_path / "conversations.json")
    first = _chat(fake_store, path)
    assert first.source == "chatgpt"
    assert (first.read, first.new, first.duplicates) == (3, 3, 0)
    assert first.rejected == {"system message": 1, "not text (image_asset_pointer)": 1}

    hits = fake_store.search("Lisbon tram", events=True)
    event = next(h.event for h in hits if isinstance(h, EventHit))
    assert event.text == "user: Plan a weekend in Lisbon with tram rides"
    assert event.source == "import" and event.app == "chatgpt"
    assert event.metadata["origin"] == "import:chatgpt"
    assert event.window_title == "Trip planning"
    assert event.occurred_at == datetime.fromtimestamp(1_700_000_060, UTC)
    assert fake_store.events.counts()["pending"] == 3  # the agents make memories from them

    again = _chat(fake_store, path)
    assert (again.read, again.new, again.duplicates) == (3, 0, 3)
    assert len(_events(fake_store)) == 3


WHATSAPP_US = """\
12/31/23, 9:41 PM - Messages and calls are end-to-end encrypted.
12/31/23, 9:41 PM - Ann: Happy new year! Bring the sparklers
and the blue blanket
1/2/24, 8:05 AM - Bob: <Media omitted>
1/2/24, 8:06 AM - Bob: The ferry leaves at 9
"""
WHATSAPP_IOS = (
    "\u200e[08/05/2023, 21:41:05] Ann: dinner at Rosa's?\n"
    "[13/05/2023, 7:02:10\u202fPM] Bob: Sure, the password: hunter2 is on the fridge\n"
)
WHATSAPP_DE = "31.12.23, 21:41 - Ann: Prost Neujahr\n"


def test_whatsapp_in_the_date_formats_of_its_locales(fake_store: MemoryStore, tmp_path: Path):
    us = tmp_path / "us.txt"
    us.write_text(WHATSAPP_US, encoding="utf-8")
    summary = _chat(fake_store, us)
    assert summary.source == "whatsapp" and summary.new == 2
    assert summary.rejected == {"system message": 1, "media or empty message": 1}
    texts = {e["text"]: e for e in _events(fake_store)}
    ann = texts["Ann: Happy new year! Bring the sparklers\nand the blue blanket"]
    assert ann["occurred_at"].startswith("2023-12-31T21:41")
    assert any(e["occurred_at"].startswith("2024-01-02T08:06") for e in texts.values())

    ios = tmp_path / "ios.txt"
    ios.write_text(WHATSAPP_IOS, encoding="utf-8")
    summary = _chat(fake_store, ios)  # 13/05 says day first, so 08/05 is the 8th of May
    assert summary.new == 2 and summary.redacted == 1
    events = {
        e["metadata"]["speaker"]: e for e in _events(fake_store) if "ios" in e["metadata"]["file"]
    }
    assert events["Ann"]["occurred_at"].startswith("2023-05-08T21:41:05")
    assert events["Bob"]["occurred_at"].startswith("2023-05-13T19:02:10")
    assert "hunter2" not in events["Bob"]["text"] and "[REDACTED:password]" in events["Bob"]["text"]

    de = tmp_path / "de.txt"
    de.write_text(WHATSAPP_DE, encoding="utf-8")
    assert _chat(fake_store, de).new == 1
    assert any(e["occurred_at"].startswith("2023-12-31T21:41") for e in _events(fake_store))


def test_jsonl_and_locomo(fake_store: MemoryStore, tmp_path: Path) -> None:
    rows = [
        {"time": "2024-03-01T10:00:00+01:00", "speaker": "Sam", "text": "Booked the dentist"},
        {"time": "1 March 2024 11:30", "speaker": "Kim", "text": "Which one?"},
        {"time": 1709290800, "speaker": "Sam", "text": ""},
    ]
    path = tmp_path / "chat.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    summary = _chat(fake_store, path)
    assert (summary.source, summary.new, dict(summary.rejected)) == (
        "jsonl",
        2,
        {"empty message": 1},
    )

    locomo = [
        {
            "sample_id": "conv-1",
            "conversation": {
                "speaker_a": "Caroline",
                "speaker_b": "Melanie",
                "session_1_date_time": "1:56 pm on 8 May, 2023",
                "session_1": [
                    {"speaker": "Caroline", "dia_id": "D1:1", "text": "I went to a support group"},
                    {"speaker": "Melanie", "dia_id": "D1:2", "text": "", "blip_caption": "a lake"},
                ],
            },
            "qa": [],
        }
    ]
    path = tmp_path / "locomo.json"
    path.write_text(json.dumps(locomo), encoding="utf-8")
    summary = _chat(fake_store, path)
    assert (summary.source, summary.new) == ("locomo", 2)
    found = [e for e in _events(fake_store) if e["app"] == "locomo"]
    assert {e["occurred_at"][:16] for e in found} == {"2023-05-08T13:56"}
    assert any("[shares a photo: a lake]" in e["text"] for e in found)


@pytest.mark.parametrize(
    ("name", "content", "line", "why"),
    [
        ("conversations.json", '[\n{"title": "a", "mapping": {}},\n{"title": "b", "mapp', 3,
         "breaks off"),
        ("chat.jsonl", '{"time": "2024-01-01", "speaker": "a", "text": "hi"}\n{"time": "2024-0',
         2, "breaks off"),
        ("chat.jsonl", '{"time": "2024-01-01", "text": "hi"}\n{"time": "yesterday", "text": "x"}\n',
         2, "yesterday"),
        ("chat.txt", "Dear diary, today I\n", 1, "not a WhatsApp export"),
        ("data.json", '{"rows": [1, 2]}', 1, "not a chat export"),
        ("photo.png", "\x89PNG\r\n", 1, "not a chat export"),
        ("locomo.json", '[{"sample_id": "x", "conversation": {"session_1": []}}]', 1,
         "no date_time"),
    ],
)  # fmt: skip
def test_bad_input_names_file_and_line_and_imports_nothing(
    fake_store: MemoryStore, tmp_path: Path, name: str, content: str, line: int, why: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ImportFailed) as caught:
        _chat(fake_store, path)
    message = str(caught.value)
    assert message.startswith(f"{path}, line {line}: ") and why in message
    assert message.endswith("nothing was imported")
    assert _events(fake_store) == []


def test_an_import_killed_half_way_is_finished_by_running_it_again(
    fake_store: MemoryStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "chat.jsonl"
    path.write_text(
        "".join(
            json.dumps({"time": f"2024-01-01T10:{n:02d}", "speaker": "a", "text": f"note {n}"})
            + "\n"
            for n in range(10)
        ),
        encoding="utf-8",
    )
    monkeypatch.setattr(base, "BATCH", 3)
    real_put = fake_store.events.put_many
    calls: list[int] = []

    def dying(events: Any) -> None:
        calls.append(len(events))
        if len(calls) == 3:
            raise KeyboardInterrupt  # the process is killed here
        real_put(events)

    monkeypatch.setattr(fake_store.events, "put_many", dying)
    with pytest.raises(KeyboardInterrupt):
        _chat(fake_store, path)
    assert len(_events(fake_store)) == 6
    monkeypatch.setattr(fake_store.events, "put_many", real_put)
    summary = _chat(fake_store, path)
    assert (summary.read, summary.new, summary.duplicates) == (10, 4, 6)
    assert sorted(e["text"] for e in _events(fake_store)) == sorted(
        f"a: note {n}" for n in range(10)
    )


def test_a_huge_export_is_streamed(fake_store: MemoryStore, tmp_path: Path) -> None:
    """Elements are decoded one at a time, also across the reader's chunk boundaries."""
    path = _chatgpt_file(tmp_path / "conversations.json")
    items = list(base.iter_json_array(path, chunk=7))
    assert [v["title"] for _, v in items] == ["Trip planning", "Sourdough"]
    assert items[0][0] == 2 and items[1][0] > items[0][0]


def _pdf(text: str) -> bytes:
    """A one-page PDF showing `text` (built by hand: the tests write their own fixtures)."""
    stream = f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = b"%PDF-1.4\n", []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return out


def test_files_become_one_resource_memory_each(fake_store: MemoryStore, tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    (folder / "sub").mkdir(parents=True)
    (folder / ".git").mkdir()
    (folder / "plan.md").write_text("# Garden plan\n\nTomatoes by the south wall.\n")
    (folder / "sub" / "todo.txt").write_text(
        "call the plumber; api_key = sk_live_abcdefghijklmnop1234"
    )
    (folder / "sub" / "report.pdf").write_bytes(_pdf("Quarterly figures for the bakery"))
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not a pdf")
    (folder / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (folder / "empty.md").write_text("  \n")
    (folder / ".git" / "x.md").write_text("hidden")
    (folder / "photo.jpg").write_bytes(b"\xff\xd8")

    summary = documents.import_files(fake_store, folder, progress=False)
    assert (summary.read, summary.new, summary.redacted) == (3, 3, 1)
    assert summary.rejected == {
        "a damaged PDF (PdfStreamError)": 1,
        "not UTF-8 text": 1,
        "no text": 1,
    }
    memories = {
        m.title: m for m in fake_store.browse(MemoryType.RESOURCE) if isinstance(m, ResourceMemory)
    }
    plan = memories["Garden plan"]
    assert plan.provenance == (str((folder / "plan.md").resolve()),)
    assert plan.origin == "import:files" and plan.resource_type == "markdown"
    assert "Quarterly figures" in memories["report.pdf"].content
    assert "sk_live" not in memories["todo.txt"].content

    (folder / "plan.md").write_text("# Garden plan\n\nTomatoes and beans by the south wall.\n")
    again = documents.import_files(fake_store, folder, progress=False)
    assert (again.new, again.duplicates, again.extra["updated"]) == (0, 2, 1)
    assert "beans" in fake_store.get(plan.id).index_text()
    assert [c.op for c in fake_store.history(plan.id)] == ["update", "create"]


def _firefox(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE moz_places (id INTEGER PRIMARY KEY, url TEXT, title TEXT);"
        "CREATE TABLE moz_historyvisits (id INTEGER PRIMARY KEY, place_id INTEGER,"
        " visit_date INTEGER);"
        "INSERT INTO moz_places VALUES (1, 'https://example.org/rust-book', 'The Rust Book'),"
        " (2, 'about:config', NULL);"
        "INSERT INTO moz_historyvisits VALUES (1, 1, 1700000000000000), (2, 1, 1700000600000000),"
        " (3, 2, 1700000000000000), (4, 1, 1700200000000000);"
    )
    conn.commit()
    conn.close()


def _chromium(path: Path) -> None:
    conn = sqlite3.connect(path)
    base_us = (1_700_000_000 + 11_644_473_600) * 1_000_000
    conn.executescript(
        "CREATE TABLE urls (id INTEGER PRIMARY KEY, url TEXT, title TEXT);"
        "CREATE TABLE visits (id INTEGER PRIMARY KEY, url INTEGER, visit_time INTEGER);"
        "INSERT INTO urls VALUES (1, 'https://news.example.com/a', 'Harbour reopens');"
        f"INSERT INTO visits VALUES (1, 1, {base_us});"
    )
    conn.commit()
    conn.close()


def test_browser_history_is_read_from_a_copy_even_while_locked(
    fake_store: MemoryStore, tmp_path: Path
) -> None:
    places = tmp_path / "ff" / "places.sqlite"
    places.parent.mkdir()
    _firefox(places)
    history = tmp_path / "chrome" / "History"
    history.parent.mkdir()
    _chromium(history)
    holder = sqlite3.connect(places)  # the browser runs and holds its database exclusively
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    before = places.read_bytes()
    try:
        ff = browser.import_history(fake_store, places, progress=False)
    finally:
        holder.rollback()
        holder.close()
    assert places.read_bytes() == before
    assert (ff.source, ff.new, dict(ff.rejected)) == ("firefox", 2, {"not a web page": 1})
    texts = sorted(e["text"] for e in _events(fake_store))
    assert texts[0].startswith("The Rust Book\nhttps://example.org/rust-book")
    assert "(visited 2 times that day)" in "".join(texts)
    cr = browser.import_history(fake_store, history, progress=False)
    assert (cr.source, cr.new) == ("chromium", 1)
    assert browser.import_history(fake_store, places, progress=False).new == 0

    bad = tmp_path / "places.sqlite"
    bad.write_bytes(b"not a database at all, just text" * 100)
    with pytest.raises(ImportFailed, match="not a readable browser database"):
        browser.import_history(fake_store, bad, progress=False)


def test_find_histories_in_the_usual_profiles(tmp_path: Path) -> None:
    profile = tmp_path / ".mozilla" / "firefox" / "abcd.default"
    profile.mkdir(parents=True)
    _firefox(profile / "places.sqlite")
    chrome = tmp_path / ".config" / "google-chrome" / "Default"
    chrome.mkdir(parents=True)
    _chromium(chrome / "History")
    assert browser.find_histories(tmp_path) == sorted(
        [chrome / "History", profile / "places.sqlite"]
    )


@pytest.fixture
def fast_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bootstrap, "make_embedder", lambda settings: HashEmbedder())
    monkeypatch.setattr(
        bootstrap, "make_index_factory", lambda settings: lambda _p: MemoryVectorIndex()
    )


def test_cli_summary_progress_and_errors(
    fast_cli: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _chatgpt_file(tmp_path / "conversations.json")
    assert main(["import-chat", str(path), "--progress"]) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert summary["new"] == 3 and summary["format"] == "chatgpt"
    assert summary["rejected"] == {"system message": 1, "not text (image_asset_pointer)": 1}
    assert "importing conversations.json: 3/3" in err and "ETA" in err
    assert main(["import-chat", str(path), "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["new"] == 0

    broken = tmp_path / "chat.jsonl"
    broken.write_text('{"time": "2024-01-01", "text": "a"}\n{"time":\n')
    assert main(["import-chat", str(broken)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"engram: error: {broken}, line 2: ")
    assert main(["import-chat", str(tmp_path / "missing.json")]) == 2
    assert "no such file" in capsys.readouterr().err

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("# Alpha\nfirst")
    assert main(["import-files", str(folder), "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["new"] == 1
    places = tmp_path / "places.sqlite"
    _firefox(places)
    assert main(["import-browser", str(places), "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["new"] == 2
    calendar = tmp_path / "cal.ics"
    calendar.write_text(ICS, newline="")
    assert main(["import-calendar", str(calendar)]) == 0
    assert json.loads(capsys.readouterr().out)["new"] == 2


def test_the_app_s_import_reports_progress_and_stops_on_cancel(
    fake_store: MemoryStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from app.importers.base import ImportCancelled
    from app.importers.jobs import run_import

    path = tmp_path / "chat.jsonl"
    path.write_text(
        "".join(json.dumps({"time": f"2024-01-01T10:{n:02d}", "text": f"n{n}"}) + "\n"
                for n in range(9)),
        encoding="utf-8",
    )  # fmt: skip
    monkeypatch.setattr(base, "BATCH", 4)
    cancel, seen = threading.Event(), []

    def progress(done: int, total: int) -> None:
        seen.append((done, total))
        cancel.set()  # the user presses Cancel after the first batch

    with pytest.raises(ImportCancelled, match="stopped after 4 new"):
        run_import(fake_store, "chat", path, on_progress=progress, cancel=cancel)
    assert seen == [(4, 9)] and len(_events(fake_store)) == 4
    seen.clear()
    [summary] = run_import(fake_store, "chat", path, on_progress=lambda d, t: seen.append((d, t)))
    assert (summary.new, summary.duplicates) == (5, 4) and seen[-1] == (9, 9)

    folder = tmp_path / "docs"
    folder.mkdir()
    for n in range(3):
        (folder / f"{n}.txt").write_text(f"doc {n}")
    cancel = threading.Event()
    with pytest.raises(ImportCancelled):
        run_import(
            fake_store, "files", folder, on_progress=lambda d, t: cancel.set(), cancel=cancel
        )
    assert len(fake_store.browse(MemoryType.RESOURCE)) == 1  # the one read before the cancel


ICS = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"
    "BEGIN:VEVENT\r\nUID:dentist-1\r\nDTSTART;TZID=Europe/Berlin:20240503T093000\r\n"
    "SUMMARY:Dentist\r\nLOCATION:Praxis Dr. Weiss\\, Berlin\r\n"
    "DESCRIPTION:Bring the insurance card\\nand the x-ray from 2023\r\nEND:VEVENT\r\n"
    "BEGIN:VEVENT\r\nUID:standup\r\nDTSTART:20240506T080000Z\r\nRRULE:FREQ=DAILY\r\n"
    "SUMMARY:Team stand-\r\n up\r\nEND:VEVENT\r\n"
    "BEGIN:VEVENT\r\nUID:blank\r\nDTSTART;VALUE=DATE:20240510\r\nEND:VEVENT\r\n"
    "END:VCALENDAR\r\n"
)


def test_calendar_events_become_episodic_memories_at_their_times(
    fake_store: MemoryStore, tmp_path: Path
) -> None:
    from zoneinfo import ZoneInfo

    from app.importers.calendar import import_calendar
    from storage.records import EpisodicMemory

    path = tmp_path / "cal.ics"
    path.write_text(ICS, encoding="utf-8", newline="")
    summary = import_calendar(fake_store, path)
    assert (summary.read, summary.new, summary.extra["recurring"]) == (2, 2, 1)
    assert summary.rejected == {"no title or description": 1}
    found = {
        m.summary: m
        for m in fake_store.browse(MemoryType.EPISODIC)
        if isinstance(m, EpisodicMemory)
    }
    dentist = found["Dentist at Praxis Dr. Weiss, Berlin"]
    assert dentist.occurred_at == datetime(2024, 5, 3, 9, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    assert dentist.details == "Bring the insurance card\nand the x-ray from 2023"
    assert dentist.origin == "import:calendar"
    assert found["Team stand-up"].occurred_at == datetime(2024, 5, 6, 8, 0, tzinfo=UTC)
    assert import_calendar(fake_store, path).new == 0

    broken = tmp_path / "broken.ics"
    broken.write_text(ICS.split("END:VEVENT")[0], encoding="utf-8", newline="")
    with pytest.raises(ImportFailed, match=r"broken.ics, line 3: the calendar breaks off"):
        import_calendar(fake_store, broken)
    bad_date = tmp_path / "bad.ics"
    bad_date.write_text(ICS.replace("20240506T080000Z", "next monday"), newline="")
    with pytest.raises(ImportFailed, match=r"bad.ics, line 12: unrecognised date 'next monday'"):
        import_calendar(fake_store, bad_date)
    assert len(fake_store.browse(MemoryType.EPISODIC)) == 2
