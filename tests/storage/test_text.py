"""What a word is, once for every layer (storage/text.py)."""

from __future__ import annotations

from storage import text


def test_a_word_is_a_run_of_letters_and_digits() -> None:
    assert text.words("Meet Ana_Lopez at 3pm, café-bar!") == [
        "meet", "ana", "lopez", "at", "3pm", "café", "bar",
    ]  # fmt: skip
    assert text.words("Lyon conference", keep_case=True) == ["Lyon", "conference"]
    assert text.words("— … !!") == []


def test_content_words_drop_stop_words_and_short_words() -> None:
    assert text.content_words("The train to Lyon IS at 8:45 on Friday") == {
        "train", "lyon", "friday",
    }  # fmt: skip
    assert "the" in text.STOPWORDS and "train" not in text.STOPWORDS
    assert text.is_content("Lyon") and not text.is_content("The") and not text.is_content("on")


def test_query_words_keep_short_words_and_fall_back_to_stop_words() -> None:
    assert text.query_words("what is my NY id and my ny PIN") == ["ny", "id", "pin"]
    assert text.query_words("who are you") == ["who", "are", "you"]  # nothing else is left
    assert len(text.query_words(" ".join(f"w{n}" for n in range(100)))) == text.MAX_QUERY_WORDS


def test_evidence_words_count_short_words_with_a_digit() -> None:
    assert text.evidence_words("At 3pm on day 4 he ran 5k in a park") == {
        "3pm",
        "5k",
        "day",
        "ran",
        "park",
    }


def test_stems_make_two_spellings_of_one_word_meet() -> None:
    assert text.stem("topics") == text.stem("topic") == "topic"
    assert text.stem("attended") == text.stem("attend") == "attend"
    assert text.stem("gas") == "gas"  # too short to lose its "s"
    assert text.stems("The topics were attended") == {"topic", "attend"}


def test_clip_folds_whitespace_and_cuts_with_an_ellipsis() -> None:
    assert text.clip("  one\n two\tthree ", 40) == "one two three"
    assert text.clip("abcdefghij", 5) == "abcd…"
    assert len(text.clip("x" * 100, 10)) == 10
    assert text.clip("abcde", 5) == "abcde"


def test_first_line_skips_blank_lines_and_cuts() -> None:
    assert text.first_line("\n\n  Title here\nbody", 40) == "Title here"
    assert text.first_line("abcdefghij\nmore", 5) == "abcd…"
    assert text.first_line("   ", 5) == ""


def test_tokens_are_the_words_and_what_lies_between_them() -> None:
    line = "Desk is on floor_2, ok!\nNext line"
    assert text.tokens(line) == ["Desk", " ", "is", " ", "on", " ", "floor", "_", "2", ", ", "ok",
                            "!\n", "Next", " ", "line"]  # fmt: skip
    assert "".join(text.tokens(line)) == line
    assert [t for t in text.tokens(line) if t.strip(" _,!\n")] == text.words(line, keep_case=True)


def test_word_diff_marks_the_words_added_and_removed() -> None:
    assert text.word_diff("Desk is on floor 2", "Desk is on floor 3 now") == [
        ("same", "Desk is on floor "),
        ("removed", "2"),
        ("added", "3 now"),
    ]
    assert text.word_diff("", "new text") == [("added", "new text")]
    assert text.word_diff("gone", "") == [("removed", "gone")]
    assert text.word_diff("same words", "same words") == [("same", "same words")]
