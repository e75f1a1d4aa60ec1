"""bench.locomo: evidence cleaning, session dates, scoring, and a small raw run through a real
store (SQLite, a Chroma folder and the embedded model) on a conversation made up here."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bench import locomo, locomo_data
from storage.protocols import Embedder


def test_clean_evidence_splits_unpads_and_drops_junk() -> None:
    raw = ["D8:6; D9:17", "D30:05", "D:11:26", "D", "D9:1 D4:4", "D8:6"]
    assert locomo_data.clean_evidence(raw) == ("D8:6", "D9:17", "D30:5", "D11:26", "D9:1", "D4:4")
    assert locomo_data.clean_evidence([]) == ()


def test_session_date_is_parsed_as_aware_utc() -> None:
    assert locomo_data.parse_session_date("1:56 pm on 8 May, 2023") == datetime(
        2023, 5, 8, 13, 56, tzinfo=UTC
    )
    assert locomo_data.parse_session_date("12:09 am on 13 September, 2023") == datetime(
        2023, 9, 13, 0, 9, tzinfo=UTC
    )
    assert locomo_data.parse_session_date("12:30 pm on 1 January 2024").hour == 12
    with pytest.raises(locomo_data.BadData, match="session date"):
        locomo_data.parse_session_date("yesterday")


def test_score_question_counts_fraction_any_and_all() -> None:
    s = locomo_data.score_question(["D1:1", "D2:3", "D5:5"], ["D2:3", "D4:1"])
    assert (s.frac, s.hit, s.all) == (0.5, True, False)
    s = locomo_data.score_question(["D4:1", "D2:3"], ["D2:3", "D4:1"])
    assert (s.frac, s.hit, s.all) == (1.0, True, True)
    s = locomo_data.score_question([], ["D1:1"])
    assert (s.frac, s.hit, s.all) == (0.0, False, False)
    with pytest.raises(ValueError):
        locomo_data.score_question(["D1:1"], [])


def test_summary_is_in_percent_and_per_category() -> None:
    scores = [
        (1, locomo_data.Score(0.5, True, False)),
        (4, locomo_data.Score(1.0, True, True)),
        (4, locomo_data.Score(0.0, False, False)),
    ]
    out = locomo_data.summarise(scores)
    assert out["frac_at_k"] == 50.0
    assert out["hit_at_k"] == pytest.approx(66.67)
    assert out["by_category"]["4"] == {
        "name": "single-hop",
        "frac_at_k": 50.0,
        "hit_at_k": 50.0,
        "all_at_k": 50.0,
        "questions": 2,
    }


def _synthetic() -> list[dict[str, Any]]:
    """One conversation in LoCoMo's shape, two sessions, with the data's known slips."""
    session_1 = [
        ("Ann", "Hi Bob! I adopted a grey kitten called Pixel last week."),
        ("Bob", "Congrats! I have been training for the Lisbon marathon."),
        ("Ann", "Wow. How far do you run each Sunday?"),
        ("Bob", "About twenty kilometres along the river."),
    ]
    session_2 = [
        ("Ann", "Pixel knocked my violin off the shelf this morning."),
        ("Bob", "Ha! I finished the marathon in four hours."),
        ("Ann", "Amazing, you should celebrate with paella."),
    ]
    conv: dict[str, Any] = {"speaker_a": "Ann", "speaker_b": "Bob"}
    for n, (date, turns) in enumerate(
        [("1:56 pm on 8 May, 2023", session_1), ("10:04 am on 19 June, 2023", session_2)], 1
    ):
        conv[f"session_{n}_date_time"] = date
        conv[f"session_{n}"] = [
            {"speaker": who, "dia_id": f"D{n}:{i}", "text": text}
            for i, (who, text) in enumerate(turns, 1)
        ]
    conv["session_2"][0]["blip_caption"] = "a photo of a cat next to a violin"
    qa = [
        {"question": "What is the name of Ann's kitten?", "evidence": ["D1:01"], "category": 4},
        {
            "question": "Which marathon did Bob train for?",
            "evidence": ["D1:2; D2:2"],
            "category": 1,
        },
        {"question": "When did Bob finish the marathon?", "evidence": ["D2:2"], "category": 2},
        {"question": "What instrument does Ann play?", "evidence": ["D2:1", "D9:9"], "category": 3},
        {"question": "What did Bob adopt?", "evidence": ["D1:1"], "category": 5},
        {"question": "A question whose evidence is junk", "evidence": ["D"], "category": 4},
    ]
    return [{"sample_id": "syn-1", "conversation": conv, "qa": qa}]


def test_load_builds_turns_with_session_dates_and_clean_evidence(tmp_path: Path) -> None:
    path = tmp_path / "locomo.json"
    path.write_text(json.dumps(_synthetic()))
    (conv,) = locomo_data.load(path)
    assert conv.speakers == ("Ann", "Bob")
    assert [t.dia_id for t in conv.turns][:2] == ["D1:1", "D1:2"]
    assert conv.turns[4].at == datetime(2023, 6, 19, 10, 4, tzinfo=UTC)
    assert conv.turns[4].caption.startswith("a photo of a cat")
    assert conv.questions[0].evidence == ("D1:1",)
    assert conv.questions[1].evidence == ("D1:2", "D2:2")
    assert conv.questions[3].evidence == ("D2:1",)  # D9:9 names no turn
    assert conv.questions[5].evidence == ()


def test_turn_memory_is_one_turn_with_its_provenance_and_date(tmp_path: Path) -> None:
    path = tmp_path / "locomo.json"
    path.write_text(json.dumps(_synthetic()))
    (conv,) = locomo_data.load(path)
    memories = [locomo.turn_memory(conv.turns, i) for i in range(len(conv.turns))]
    assert [m.provenance for m in memories] == [(t.dia_id,) for t in conv.turns]
    assert memories[3].actor == "Bob"
    assert memories[3].occurred_at == conv.turns[3].at
    assert memories[4].summary.endswith("[shared a photo of a cat next to a violin]")


@pytest.mark.real
def test_raw_run_end_to_end_on_a_real_store(tmp_path: Path, real_embedder: Embedder) -> None:
    path = tmp_path / "locomo.json"
    path.write_text(json.dumps(_synthetic()))
    out = locomo.run_raw(locomo_data.load(path), real_embedder, k=3)
    assert out["questions"] == 4  # category 5 is not scored; the junk-evidence one is skipped
    assert out["skipped_no_evidence"] == 1
    assert set(out["by_category"]) == {"1", "2", "3", "4"}
    assert out["turns"] == 7
    assert out["frac_at_k"] >= 75.0  # a tiny conversation: the right turns are easy to find
    assert out["search_p50_ms"] > 0


def test_halves_are_named_by_place_in_the_file() -> None:
    assert [locomo.half_of(i) for i in (0, 4, 5, 9)] == ["0-4", "0-4", "5-9", "5-9"]


def test_conversations_from_skips_the_first_ones(tmp_path: Path) -> None:
    data = _synthetic() * 3
    for n, item in enumerate(data):
        item = item | {"sample_id": f"syn-{n}"}
        data[n] = item
    path = tmp_path / "locomo.json"
    path.write_text(json.dumps(data))
    args = locomo.parse_args(
        ["--data", str(path), "--conversations-from", "1", "--index", "memory"]
    )
    conversations, factory = locomo.prepare(args)
    assert [c.sample_id for c in conversations] == ["syn-1", "syn-2"]
    assert factory is not None
    args = locomo.parse_args(
        ["--data", str(path), "--conversations-from", "1", "--conversations", "1"]
    )
    assert [c.sample_id for c in locomo.prepare(args)[0]] == ["syn-1"]


def test_raw_run_scores_each_half_apart(tmp_path: Path) -> None:
    from storage.fakes import HashEmbedder, MemoryVectorIndex

    path = tmp_path / "locomo.json"
    path.write_text(json.dumps(_synthetic() * 2))
    conversations = locomo_data.load(path)
    out = locomo.run_raw(
        conversations,
        HashEmbedder(64),
        k=3,
        index_factory=lambda _p: MemoryVectorIndex(),
        first_index=4,
    )
    assert set(out["by_half"]) == {"0-4", "5-9"}
    for half in out["by_half"].values():
        assert half["questions"] == 4
        assert set(half["by_category"]) == {"1", "2", "3", "4"}
        assert half["frac_at_k"] == out["frac_at_k"]  # the same conversation twice
    assert out["questions"] == 8
    assert out["search_p95_ms"] >= out["search_p50_ms"] > 0


def test_a_quicker_run_is_the_same_prefix_in_both_modes(tmp_path: Path) -> None:
    """--max-turns keeps the first turns and only the scored questions they answer; raw and
    agents mode cut it in one place (prepare), so their figures compare."""
    path = tmp_path / "locomo.json"
    path.write_text(json.dumps(_synthetic()))
    (conv,) = locomo_data.load(path)
    cut = locomo_data.prefix(conv, 4, None)
    assert [t.dia_id for t in cut.turns] == [t.dia_id for t in conv.turns[:4]]
    kept = {t.dia_id for t in cut.turns}
    assert cut.questions and all(set(q.evidence) <= kept for q in cut.questions)
    assert all(q.category in locomo_data.SCORED_CATEGORIES for q in cut.questions)
    assert len(locomo_data.prefix(conv, None, 1).questions) == 1
    assert locomo_data.prefix(conv, None, None) is conv
    for mode in ("raw", "agents"):
        args = locomo.parse_args(["--data", str(path), "--mode", mode, "--max-turns", "4"])
        (prepared,), _factory = locomo.prepare(args)
        assert prepared == cut


def test_a_second_stage_reranks_the_first_hits_by_the_stronger_embedder(tmp_path: Path) -> None:
    from storage.fakes import HashEmbedder, MemoryVectorIndex

    path = tmp_path / "locomo.json"
    path.write_text(json.dumps(_synthetic()))
    conversations = locomo_data.load(path)
    rescore = locomo.Rescorer(HashEmbedder(128), weight=1.0, depth=6)
    out = locomo.run_raw(
        conversations,
        HashEmbedder(16),
        k=1,
        index_factory=lambda _p: MemoryVectorIndex(),
        rescore=rescore,
    )
    assert out["rescore"] == {"embedder": "hash-128", "weight": 1.0, "depth": 6}
    assert out["questions"] == 4
    # The stage itself: the hit closest to the query in the second embedder's space goes first.
    from bench._setup import bench_runtime
    from storage.records import MemoryType

    with bench_runtime(tmp_path / "s", embedder=HashEmbedder(16)) as runtime:
        store = runtime.store()
        store.add_many([locomo.turn_memory(conversations[0].turns, i) for i in range(7)])
        hits = store.search("violin shelf morning", [MemoryType.EPISODIC], 6)
        heavy = locomo.Rescorer(HashEmbedder(128), weight=100.0, depth=6)
        again = heavy("violin shelf morning", hits)
        assert sorted(h.record.id for h in again) == sorted(h.record.id for h in hits)
        assert again[0].record.provenance == ("D2:1",)
        assert heavy("anything", []) == []
