"""What a word is, everywhere: search, grounding, de-duplication, citations and clipping.

One tokenizer (`words`) and one stop-word list, so the keyword index, the grounding check and
the near-duplicate test cannot drift apart on what counts as a word. Callers that need a
different cut say so by name (`query_words` for an FTS5 query, `stems` for grounding,
`evidence_words` for citations), never with a private regex. Knows no LLM and no Qt, so every
layer may import it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from typing import Literal

#: A word is a run of letters and digits; "_" and punctuation separate words.
_WORD = re.compile(r"[^\W_]+", re.UNICODE)

#: Words that carry no topic; keeping them makes BM25 match half the corpus for nothing.
STOPWORDS = frozenset(
    """a an and are as at be been but by can could did do does for from had has have he her
    hers him his how i if in into is it its me my of on or our she so than that the their them
    then there these they this to was we were what when where which who whom why will with
    would you your yours""".split()
)

#: Shortest word that counts as content (shorter ones are "of", "to", "id"…).
MIN_CONTENT_LENGTH = 3
#: Letters a stem keeps: enough to tell "meeting" from "message", few enough that
#: "attended" grounds "attend".
STEM_LENGTH = 6
#: Most words a keyword query matches on.
MAX_QUERY_WORDS = 32


def words(text: str, *, keep_case: bool = False) -> list[str]:
    """Every word of `text`, in order, lower-cased unless `keep_case`."""
    found = _WORD.findall(text)
    return found if keep_case else [w.lower() for w in found]


def word_spans(text: str) -> Iterator[re.Match[str]]:
    """Each word of `text` (as `words` finds them) with where it stands, case kept."""
    return _WORD.finditer(text)


def is_content(word: str) -> bool:
    """A word that says something: long enough and not a stop word (case-insensitive)."""
    return len(word) >= MIN_CONTENT_LENGTH and word.lower() not in STOPWORDS


def content_words(text: str) -> set[str]:
    """The lower-cased words of `text` that carry content (see `is_content`)."""
    return {w for w in words(text) if is_content(w)}


def query_words(text: str) -> list[str]:
    """The words a keyword search matches on: lower-cased, unique, in order, stop words dropped
    unless nothing else is left (a query of only "who are you" still matches something). Short
    words are kept: "5k", "ny" and "id" are what a user searches for."""
    found = words(text)
    content = [w for w in found if w not in STOPWORDS] or found
    return list(dict.fromkeys(content))[:MAX_QUERY_WORDS]


def evidence_words(text: str) -> set[str]:
    """Content words plus the short ones holding a digit ("3pm", "5k"): what shows an answer
    drew on a memory. A lone digit is too common to count."""
    return {
        w
        for w in words(text)
        if w not in STOPWORDS
        and (len(w) >= MIN_CONTENT_LENGTH or (len(w) > 1 and any(c.isdigit() for c in w)))
    }


def stem(word: str) -> str:
    """A crude stem: a plural "s" off, then the first STEM_LENGTH letters ("topics" → "topic",
    "attended" → "attend"). Crude on purpose: it only has to make two spellings of one word
    meet, never to be shown."""
    if word.endswith("s") and len(word) > 3:
        word = word[:-1]
    return word[:STEM_LENGTH]


def stems(text: str) -> set[str]:
    """The stems of the content words of `text`."""
    return {stem(w) for w in content_words(text)}


def clip(text: str, width: int) -> str:
    """`text` on one line (whitespace folded), cut to `width` characters with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def first_line(text: str, width: int) -> str:
    """The first non-blank line of `text`, cut to `width` characters with an ellipsis."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


#: A word (as `words` cuts them) or the run of spaces and punctuation between two words.
_TOKEN = re.compile(rf"{_WORD.pattern}|(?:(?!{_WORD.pattern}).)+", re.UNICODE | re.DOTALL)

DiffOp = Literal["same", "added", "removed"]


def tokens(text: str) -> list[str]:
    """`text` cut into its words and the runs between them: joined, they are `text` again."""
    return _TOKEN.findall(text)


def word_diff(before: str, after: str) -> list[tuple[DiffOp, str]]:
    """What changed from `before` to `after`, word by word: runs of text kept, removed and
    added, in reading order (a replaced run is its removed words, then its added ones)."""
    old, new = tokens(before), tokens(after)
    out: list[tuple[DiffOp, str]] = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            out.append(("same", "".join(old[i1:i2])))
            continue
        if i2 > i1:
            out.append(("removed", "".join(old[i1:i2])))
        if j2 > j1:
            out.append(("added", "".join(new[j1:j2])))
    return out
