"""Chat exports as items for `import_items`: ChatGPT's conversations.json, WhatsApp's .txt (in
the date formats its locales write), JSON Lines of {"time", "speaker", "text"}, and LoCoMo-shaped
JSON. Every date goes through storage/dates.py's `parse_when`; each parser streams its file and
raises ImportFailed naming the line of anything it cannot read."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

from app.importers import CHAT_FORMATS
from app.importers.base import ImportFailed, Item, Parsed, Rejected, item_key, iter_json_array
from storage.dates import UnknownDateFormat, parse_when

FORMATS = CHAT_FORMATS


def _local() -> tzinfo:
    return datetime.now().astimezone().tzinfo or UTC


def _when(path: Path, value: object, line: int, tz: tzinfo | None = None, **kw: Any) -> datetime:
    try:
        return parse_when(str(value), tz=tz or _local(), **kw)
    except UnknownDateFormat as exc:
        raise ImportFailed(path, str(exc), line) from None


def detect(path: Path) -> str:
    """The format of `path` from its name and first bytes; ImportFailed when none fits."""
    suffix = path.suffix.lower()
    try:
        with path.open("rb") as handle:
            head = handle.read(4096).decode("utf-8-sig", errors="replace").lstrip()
    except OSError as exc:
        raise ImportFailed(path, f"cannot be read ({exc.strerror or exc})") from None
    if not head:
        raise ImportFailed(path, "the file is empty")
    if suffix == ".txt":
        return "whatsapp"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if head.startswith("["):
        return "locomo" if '"conversation"' in head or '"sample_id"' in head else "chatgpt"
    if head.startswith("{"):
        first = head.splitlines()[0]
        if '"speaker"' in first and '"text"' in first:
            return "jsonl"
        if '"conversation"' in head or '"speaker_a"' in head:
            return "locomo"
        raise ImportFailed(path, "a JSON object, but not a chat export Engram knows", 1)
    raise ImportFailed(
        path,
        "not a chat export Engram knows (ChatGPT conversations.json, WhatsApp .txt, "
        "JSON Lines with time/speaker/text, LoCoMo JSON); name the format with --format",
        1,
    )


def parser(path: Path, fmt: str, *, day_first: bool | None = None) -> Any:
    """A function yielding the file's items, for `import_items` (called twice)."""
    if fmt == "chatgpt":
        return lambda: chatgpt(path)
    if fmt == "whatsapp":
        return lambda: whatsapp(path, day_first=day_first)
    if fmt == "jsonl":
        return lambda: jsonl(path)
    if fmt == "locomo":
        return lambda: locomo(path)
    raise ImportFailed(path, f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")


# ----- ChatGPT -------------------------------------------------------------------------------


def chatgpt(path: Path) -> Iterator[Parsed]:
    """ChatGPT's export: a list of conversations, each a `mapping` of message nodes."""
    for line, conv in iter_json_array(path):
        if not isinstance(conv, dict) or not isinstance(conv.get("mapping"), dict):
            raise ImportFailed(path, "not a ChatGPT conversation (no 'mapping')", line)
        title = str(conv.get("title") or "ChatGPT conversation")
        conv_time = conv.get("create_time")
        messages = []
        for node in conv["mapping"].values():
            message = node.get("message") if isinstance(node, dict) else None
            if not isinstance(message, dict):
                continue
            messages.append(message)
        messages.sort(key=lambda m: float(m.get("create_time") or conv_time or 0))
        for message in messages:
            yield _chatgpt_message(path, line, message, title, conv_time)


def _chatgpt_message(
    path: Path, line: int, message: dict[str, Any], title: str, conv_time: object
) -> Parsed:
    role = str((message.get("author") or {}).get("role") or "")
    content = message.get("content") or {}
    if role not in ("user", "assistant"):
        return Rejected(f"{role or 'unknown'} message", line)
    parts = content.get("parts") if isinstance(content, dict) else None
    texts = [p for p in parts or [] if isinstance(p, str)]
    text = "\n".join(texts).strip()
    if not text:
        kind = content.get("content_type", "empty") if isinstance(content, dict) else "empty"
        return Rejected("empty message" if kind == "text" else f"not text ({kind})", line)
    when = message.get("create_time") or conv_time
    if when is None:
        raise ImportFailed(path, f"message {message.get('id')!r} has no time", line)
    return Item(
        key=str(message.get("id") or item_key(when, role, text)),
        at=_when(path, when, line, UTC),
        text=text,
        speaker="user" if role == "user" else "ChatGPT",
        title=title,
        line=line,
    )


# ----- WhatsApp ------------------------------------------------------------------------------

# "12/31/23, 9:41 PM - Ann: hi" (Android), "[31.12.23, 21:41:05] Ann: hi" (iOS),
# "2023-12-31 21:41 - Ann: hi", "31-12-2023 21.41 - Ann: hi"
_WA_LINE = re.compile(
    r"^\[?(?P<date>\d{1,4}[./-]\d{1,2}[./-]\d{1,4})[,\s]\s*"
    r"(?P<time>\d{1,2}[:.]\d{2}(?:[:.]\d{2})?(?:\s?[apAP]\.?\s?[mM]\.?)?)\]?"
    r"\s*(?:[-–~]\s*)?(?P<rest>.*)$"
)
_SPEAKER = re.compile(r"^(?P<speaker>[^:\n]{1,80}?):\s(?P<text>.*)$", re.S)
_INVISIBLE = dict.fromkeys(map(ord, "\u200e\u200f\u202a\u202c\ufeff"), None)
_MEDIA = re.compile(r"^<(?:Media omitted|[^>]{0,40} omitted)>$|^\S+ \(file attached\)$", re.I)


def _wa_clean(line: str) -> str:
    return line.translate(_INVISIBLE).replace("\u202f", " ").replace("\xa0", " ").rstrip("\n")


def _wa_day_first(path: Path) -> bool | None:
    """Whether the file writes the day first, from its dates: a first number over 12 says
    yes, a second over 12 says no; None when no date settles it (then month first, as the US)."""
    with path.open(encoding="utf-8-sig", errors="replace") as handle:
        for raw in handle:
            m = _WA_LINE.match(_wa_clean(raw))
            if not m or ("-" in m["date"][:5] and len(m["date"].split("-")[0]) == 4):
                continue
            a, b, _ = re.split(r"[./-]", m["date"])
            if "." in m["date"] or int(a) > 12:
                return True
            if int(b) > 12:
                return False
    return None


def whatsapp(path: Path, *, day_first: bool | None = None) -> Iterator[Parsed]:
    """WhatsApp's "Export chat" text: a message a line, continued on the lines after it."""
    if day_first is None:
        day_first = bool(_wa_day_first(path))
    current: dict[str, Any] | None = None
    seen = 0
    try:
        with path.open(encoding="utf-8-sig") as handle:
            for number, raw in enumerate(handle, start=1):
                line = _wa_clean(raw)
                m = _WA_LINE.match(line)
                if m is None:
                    if current is None:
                        if line.strip():
                            raise ImportFailed(
                                path, "not a WhatsApp export (no date at the start)", number
                            )
                        continue
                    current["text"] += "\n" + line
                    continue
                if current is not None:
                    yield _wa_item(path, current)
                seen += 1
                current = {"m": m, "text": m["rest"], "line": number, "day_first": day_first}
    except UnicodeDecodeError as exc:
        raise ImportFailed(path, f"this is not UTF-8 text ({exc.reason})") from None
    if current is not None:
        yield _wa_item(path, current)
    if not seen:
        raise ImportFailed(path, "not a WhatsApp export (no message found)", 1)


def _wa_item(path: Path, current: dict[str, Any]) -> Parsed:
    m, line = current["m"], current["line"]
    date = m["date"]
    if re.fullmatch(r"\d{1,2}-\d{1,2}-\d{2,4}", date):
        date = date.replace("-", "/")
    clock = re.sub(r"^(\d{1,2})\.(\d{2})(?:\.(\d{2}))?", lambda g: ":".join(
        x for x in g.groups() if x), m["time"])  # fmt: skip
    at = _when(path, f"{date} {clock}", line, day_first=current["day_first"])
    said = _SPEAKER.match(current["text"])
    if said is None:
        return Rejected("system message", line)
    text = said["text"].strip()
    if not text or _MEDIA.match(text):
        return Rejected("media or empty message", line)
    speaker = said["speaker"].strip()
    return Item(
        key=item_key(at.isoformat(), speaker, text),
        at=at,
        text=text,
        speaker=speaker,
        title=f"WhatsApp: {path.stem}",
        line=line,
    )


# ----- JSON Lines ----------------------------------------------------------------------------


def jsonl(path: Path) -> Iterator[Parsed]:
    """One JSON object a line: {"time": …, "speaker": …, "text": …}; blank lines are skipped."""
    try:
        with path.open(encoding="utf-8-sig") as handle:
            for number, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                try:
                    row = json.loads(raw)
                except json.JSONDecodeError as exc:
                    why = "the line breaks off" if not raw.endswith("\n") else exc.msg
                    raise ImportFailed(path, f"not a JSON object ({why})", number) from None
                if not isinstance(row, dict) or "time" not in row or "text" not in row:
                    raise ImportFailed(path, 'expected {"time", "speaker", "text"}', number)
                text = str(row.get("text") or "").strip()
                if not text:
                    yield Rejected("empty message", number)
                    continue
                at = _when(path, row["time"], number)
                speaker = str(row.get("speaker") or "")
                yield Item(
                    key=str(row.get("id") or item_key(at.isoformat(), speaker, text)),
                    at=at,
                    text=text,
                    speaker=speaker,
                    title=str(row.get("conversation") or path.stem),
                    line=number,
                )
    except UnicodeDecodeError as exc:
        raise ImportFailed(path, f"this is not UTF-8 text ({exc.reason})") from None


# ----- LoCoMo --------------------------------------------------------------------------------


def locomo(path: Path) -> Iterator[Parsed]:
    """LoCoMo's shape: samples with a `conversation` of `session_N` turn lists, each session
    dated by `session_N_date_time` ('1:56 pm on 8 May, 2023')."""
    with path.open(encoding="utf-8-sig") as handle:
        first = handle.read(64).lstrip()[:1]
    if first == "{":
        try:
            samples: Any = [(1, json.loads(path.read_text(encoding="utf-8-sig")))]
        except json.JSONDecodeError as exc:
            raise ImportFailed(path, f"the JSON is malformed ({exc.msg})", exc.lineno) from None
    else:
        samples = iter_json_array(path)
    for line, sample in samples:
        conv = sample.get("conversation") if isinstance(sample, dict) else None
        if not isinstance(conv, dict):
            raise ImportFailed(path, "not a LoCoMo sample (no 'conversation')", line)
        sample_id = str(sample.get("sample_id") or line)
        session = 1
        while f"session_{session}" in conv:
            when = conv.get(f"session_{session}_date_time")
            if when is None:
                raise ImportFailed(path, f"session {session} has no date_time", line)
            at = _when(path, when, line, UTC)
            for turn in conv[f"session_{session}"] or []:
                text = str(turn.get("text") or "").strip()
                caption = str(turn.get("blip_caption") or "")
                if caption:
                    text = f"{text} [shares a photo: {caption}]".strip()
                if not text:
                    yield Rejected("empty message", line)
                    continue
                dia = str(turn.get("dia_id") or item_key(session, text))
                yield Item(
                    key=f"{sample_id}:{dia}",
                    at=at,
                    text=text,
                    speaker=str(turn.get("speaker") or ""),
                    title=f"LoCoMo {sample_id} session {session}",
                    line=line,
                )
            session += 1
