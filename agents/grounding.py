"""Grounding: what a memory agent writes must come from what it was shown.

A small model will happily "update" a memory with text it made up ("Update: the new
observations"), copy a timestamp into a core block, or delete a memory the batch never
mentions. Each of these would quietly damage the user's memory, so every operation is checked
against the batch before it is planned: the content words a model writes must mostly appear in
the batch (or, for an update or merge, in the memories it changes); a secret must appear in the
batch word for word; a delete must name a memory the batch talks about. Words are compared by
a crude stem (storage/text.py), so "attended" grounds "attend" and "topics" grounds "topic".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from agents.operations import FieldSpec, OperationRejected
from storage.records import Event
from storage.text import stems

#: Share of a written text's content words that must be found in what the model was shown.
MIN_SUPPORT = 0.5
#: How agents/chat.py records a chat turn: the user's words come first, then the answer.
USER_TURN, ANSWER_TURN = "User asked: ", "\nEngram answered:"
#: An imported message is the user's when its metadata names them as the speaker.
USER_SPEAKERS = frozenset({"user", "me", "self"})


def user_text(event: Event) -> str:
    """What the user said or typed in `event`: their half of a chat turn, a message an import
    says is theirs, a note they typed; "" for screen text and for what others said."""
    if event.source == "manual":
        return event.text
    speaker = str(event.metadata.get("speaker", "")).strip().lower()
    if event.source == "chat":
        if event.text.startswith(USER_TURN):
            return event.text[len(USER_TURN) :].split(ANSWER_TURN, 1)[0]
        return event.text if speaker in USER_SPEAKERS else ""
    if event.source == "import" and speaker in USER_SPEAKERS:
        return event.text
    return ""


class Ungrounded(OperationRejected):
    """An operation whose content is not in the batch: the loop rejects that one operation."""


class Observations:
    """What a batch showed the model, for checking what it wrote."""

    def __init__(self, events: Sequence[Event]) -> None:
        self.events = tuple(events)
        parts = [
            f"{e.occurred_at.astimezone():%Y-%m-%d %H:%M %A %d %B} {e.source} {e.app or ''} "
            f"{e.window_title or ''} {e.text}"
            for e in events
        ]  # what the model saw of each event (render_events), and the date in words
        self.text = " ".join(" ".join(parts).lower().split())
        self.words = stems(self.text)

    def from_user(self) -> Observations:
        """Only what the user said or typed in this batch (`user_text`), to ground what is
        written about the person: never screen text alone."""
        said = [
            e.model_copy(update={"text": text, "app": "", "window_title": ""})
            for e in self.events
            if (text := user_text(e).strip())
        ]
        return Observations(said)

    def check_written(
        self, fields: Mapping[str, Any], specs: Iterable[FieldSpec], also: Iterable[str] = ()
    ) -> None:
        """Each of the model's free-text fields, against the batch plus `also` (the memories
        an update or merge changes): a made-up name is caught even beside a copied summary."""
        known = self.words.union(*(stems(t) for t in also))
        for spec in specs:
            value = " ".join(str(fields.get(spec.name, "")).split())
            if not value or spec.enum or not spec.grounded:
                continue
            if spec.verbatim and value.lower() not in self.text:
                raise Ungrounded("not-verbatim", f"{spec.name} does not appear in the observations")
            words = stems(value)
            if not spec.verbatim and not any(w[0].isalpha() for w in words) and len(value) > 3:
                # "2023-05-25 13:14" as a core fact or a caption: a timestamp copied, no content
                raise Ungrounded(
                    "no-words", f"{spec.name} says nothing in words (only numbers or symbols)"
                )
            if len(words & known) < MIN_SUPPORT * len(words):
                missing = ", ".join(sorted(words - known)[:5])
                raise Ungrounded(
                    "ungrounded", f"{spec.name}: most of it is not in the observations ({missing})"
                )

    def check_merged(
        self, fields: Mapping[str, Any], specs: Iterable[FieldSpec], olds: Sequence[str]
    ) -> None:
        """A merge's text is grounded in the batch and the merged memories, and each of those
        shares a word with it: two memories about different things are not one."""
        self.check_written(fields, specs, also=olds)
        merged = stems(" ".join(str(v) for v in fields.values()))
        if any(not stems(old) & merged for old in olds):
            raise Ungrounded("unrelated-merge", "it merges memories that are not about one thing")

    def check_mentioned(self, text: str) -> None:
        """A memory the model wants to delete must be one the batch talks about."""
        words = stems(text)
        if len(words & self.words) < min(2, len(words)) or not words:
            raise Ungrounded("unmentioned", "the observations do not mention the memory it deletes")
