"""Redact secrets from captured text before anything is written, keeping only counts per kind.

Each rule finds candidates by *shape* (capture/secret_rules.py: a provider's prefix, a digit
layout; capture/secret_labels.py: a label and its value) and a check decides
(capture/secret_shapes.py: Luhn for cards, mod 97 for IBANs, SSA ranges for SSNs, the JSON
header of a JWT, "is this prose, code or a placeholder?" for labelled values). This module
adds what needs an engine: `detect-secrets`' provider patterns and its Shannon entropy for
opaque tokens, and the BIP-39 word list from `mnemonic` for seed phrases; it is the only
module that imports either. A match becomes `mask(kind)`; the value is never kept, logged or
counted beyond "one more of this kind".

Every rule is linear in its input, and `Redactor.redact` takes a time budget so a hostile
screen cannot stall capture. `redact_then_cut` redacts before a length cut, so no secret
straddles it.
"""

from __future__ import annotations

import functools
import math
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import accumulate, repeat
from typing import Any

from capture.secret_labels import labelled
from capture.secret_rules import (
    AWS_ID,
    AZURE,
    BEARER,
    CLI,
    JWT,
    LONG,
    PROVIDER,
    RECOVERY_HINTS,
    SSN_HINTS,
    TOTP_HINTS,
    TOTP_URL,
    URL_PARAM,
    URL_PASSWORD,
    authorization,
    cards,
    cli_value,
    iban,
    jwt_ok,
    key_block,
    long_kind,
    recovery,
    regex,
    ssn,
    ssn_spaced,
    totp,
)
from capture.secret_shapes import (
    MASKED,
    Finder,
    Hit,
    Span,
    digit_count,
    fold,
    iban_ok,
    lower,
    luhn_ok,
    mask,
    token_shaped,
)
from storage.errors import EngramError

__all__ = ["Redaction", "RedactionTooSlow", "Redactor", "iban_ok", "luhn_ok", "mask", "redact"]


class RedactionTooSlow(EngramError):
    """Redaction ran past its time budget; the text is dropped rather than stored unredacted."""


@dataclass(frozen=True)
class Rule:
    kind: str
    find: Finder
    #: Lowercase fragments one of which the text must hold for the rule to run at all: a cheap
    #: `in` test spares a regex scan of 100,000 characters that cannot match.
    hints: tuple[str, ...] = ()
    #: For a rule whose every match lies within this many characters of one of its hints:
    #: search only there, so a page that names a hint once does not cost a scan of it all.
    near: int = 0


#: detect-secrets plugins whose patterns find provider tokens as they appear in text, with the
#: lowercase hints that gate them. The others are written for source files (keywords, high
#: entropy, IP addresses: done here by shape), backtrack over a long line (npm's
#: `//.+/:_authToken`, OpenAI's `sk-[…]*[…]{20}T3Blbk`), or start with a character class
#: that makes every position a try (Discord, Telegram): ours cover those in linear time.
_PLUGINS = (
    ("github_token.GitHubTokenDetector", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_")),
    (
        "gitlab_token.GitLabTokenDetector",
        (
            *("glpat-", "gldt-", "glft-", "glsoat-", "glrt-", "glcbt-", "glimt-", "glptt-"),
            *("glagent-", "gloas-", "gr1348941"),
        ),
    ),
    ("mailchimp.MailchimpDetector", ("-us",), 40),
    ("pypi_token.PypiTokenDetector", ("pypi-",)),
    ("sendgrid.SendGridDetector", ("sg.",)),
    ("slack.SlackDetector", ("xox", "hooks.slack")),
    ("square_oauth.SquareOAuthDetector", ("sq0csp-",)),
    ("stripe.StripeDetector", ("k_live_",)),
    ("twilio.TwilioKeyDetector", ("ac", "sk")),  # literal "AC" / "SK": searched fast
    ("azure_storage_key.AzureStorageKeyDetector", ("accountkey=",)),
)


def _plugin_patterns() -> list[tuple[re.Pattern[str], tuple[str, ...], int]]:
    """Each plugin pattern with its hints and how near them a match lies (0: anywhere;
    Mailchimp's key is 32 characters before its "-us")."""
    import importlib

    patterns: list[tuple[re.Pattern[str], tuple[str, ...], int]] = []
    for name, hints, *near in _PLUGINS:
        module, cls = name.rsplit(".", 1)
        plugin = getattr(importlib.import_module(f"detect_secrets.plugins.{module}"), cls)
        patterns.extend((p, hints, near[0] if near else 0) for p in plugin.denylist)
    return patterns


def _entropy(value: str) -> float:
    """Shannon entropy over the base64 alphabet, as detect-secrets measures it (its plugin
    counts each of 65 characters in turn; for a token of at most 200 characters the same sum
    over the characters present, -sum(p log p) = log n - sum(c log c) / n with c log c from a
    table, is many times faster)."""
    n = len(value)
    if n > 200:
        return float(_base64_plugin().calculate_shannon_entropy(value))
    return math.log2(n) - sum(map(_C_LOG_C.__getitem__, Counter(value).values())) / n


_C_LOG_C = [0.0] + [c * math.log2(c) for c in range(1, 201)]


@functools.cache
def _base64_plugin() -> Any:
    from detect_secrets.plugins.high_entropy_strings import Base64HighEntropyString

    return Base64HighEntropyString(limit=4.5)


@functools.cache
def _bip39_words() -> frozenset[str]:
    from mnemonic import Mnemonic

    return frozenset(Mnemonic("english").wordlist)


_NEAR_RUN = re.compile(rb"(?:\x01\x02?){4}")
_SEED_RUN = re.compile(rb"(?:\x01\x02?){11,}|(?:\x01\x02?){2,}\x00\x02?(?:\x01\x02?){2,}")
#: Stripped from each word before the look-up: punctuation, and digits of a numbered list.
_PUNCT = ".,;:()[]•·-"
_STRIP = _PUNCT + "|0123456789"
_WORD_OCR = (("1", "l"), ("|", "l"), ("0", "o"), ("5", "s"))
#: Splits a text into its words and the whitespace between them, as str.split() sees it.
_WHITESPACE = re.compile(r"(\s+)")


@functools.cache
def _seed_marks() -> dict[str, int]:
    marks = dict.fromkeys(_bip39_words(), 1)
    marks[""] = 2  # a list number ("1.", "12)") between the words
    return marks


def _seed_phrase(text: str) -> Iterator[Span]:
    """12 to 24 words of the BIP-39 list in a row, plain or numbered ("1. abandon 2. ability");
    a word OCR misread ("a1cohol") is read back as letters, and one unknown word is tolerated.
    Words are classified with C-speed `split` and `map` into one byte per word, and runs are
    found in that string, so prose costs a few cheap passes."""
    lowered = lower(text)
    tokens = lowered.split()
    if len(tokens) < 12:
        return
    table = _seed_marks()
    marks = bytes(map(table.get, map(str.strip, tokens, repeat(_STRIP)), repeat(0)))
    if marks.count(1) < 6:
        return
    # Words OCR misread ("a1cohol"): read again as letters, where clean words already run.
    folded = fold(lowered, _WORD_OCR)
    folded_words = folded.split() if folded != lowered and _NEAR_RUN.search(marks) else []
    if len(folded_words) == len(tokens):
        again = bytes(map(table.get, map(str.strip, folded_words, repeat(_PUNCT)), repeat(0)))
        marks = bytes(map(max, marks, again))
    runs = []
    for m in _SEED_RUN.finditer(marks):
        run = marks[m.start() : m.end()]
        hits, misses = run.count(1), run.count(0)
        if hits >= 12 or (hits >= 11 and misses == 1):
            runs.append((m.start(), m.end()))
    if not runs:
        return
    starts = _word_starts(text)
    for first, last in runs:
        while marks[last - 1] != 1:
            last -= 1
        while marks[first] != 1:
            first += 1
        yield starts[2 * first], starts[2 * last - 1]


def _word_starts(text: str) -> list[int]:
    """Where word i of `text.split()` starts (item 2i) and ends (item 2i + 1): the lengths of
    the words and the gaps between them, summed at C speed."""
    parts = _WHITESPACE.split(text)
    offsets = [0, *accumulate(map(len, parts))]
    return offsets[2:] if parts[0] == "" else offsets


def _long_tokens(text: str) -> Iterator[Hit]:
    """One pass for every rule about a long unbroken token; each candidate goes to the first
    check it passes. Whitespace-split tokens (C speed) are filtered by length first, so prose
    costs little and only long tokens are searched."""
    at = 0
    scanned = _unmasked(text)  # offsets are the text's; `long_kind` reads the text itself
    find, fullmatch = scanned.find, LONG.fullmatch
    for token in scanned.split():
        if len(token) < 11:
            continue
        at = find(token, at)
        if fullmatch(token):  # the usual case: the token is one candidate
            kind = long_kind(text, token, at, _opaque)
            if kind is not None:
                yield at, at + len(token), kind
        else:
            for m in LONG.finditer(token):
                start, end = m.span()
                if start and (token[start - 1].isalnum() or token[start - 1] in "+/=_-"):
                    continue
                if end < len(token) and (token[end].isalnum() or token[end] in "+/=_-"):
                    continue
                kind = long_kind(text, m.group(0), at + start, _opaque)
                if kind is not None:
                    yield at + start, at + end, kind
        at += len(token)


def _unmasked(text: str) -> str:
    """`text` with its masks blanked out at the same length: a mask is no secret, and a page
    of masked values ("pwd=[REDACTED:password]") then costs no look at each."""
    if "[REDACTED:" not in text:
        return text
    for masked in set(MASKED.findall(text)):
        text = text.replace(masked, " " * len(masked))
    return text


def _opaque(value: str) -> bool:
    """An opaque token no rule names: mixed case and digits, near-random (detect-secrets'
    Shannon entropy over the base64 alphabet)."""
    if value.isupper() or value.islower() or value.count("/") > 3:
        return False
    n, chars = len(value), set(value)
    distinct = len(chars)
    if distinct < min(20, n // 2) or digit_count(value) < 3:
        return False
    if n > 200:
        return _entropy(value) >= 4.2
    if _least_entropy(n, distinct) > 4.2 + 1e-9:
        return True  # the entropy is at least that, whatever the counts: no need to count
    # `_entropy` from the counts of the characters already found (no Counter to build)
    return math.log2(n) - sum(map(_C_LOG_C.__getitem__, map(value.count, chars))) / n >= 4.2


def _least_entropy(n: int, distinct: int) -> float:
    """The lowest Shannon entropy `n` characters of `distinct` kinds can have: one character
    n - distinct + 1 times, each other once (entropy is Schur-concave)."""
    top = (n - distinct + 1) / n
    return -top * math.log2(top) + (distinct - 1) / n * math.log2(n)


@functools.cache
def default_rules() -> tuple[Rule, ...]:
    """The rules in the order they run: whole blocks and structured tokens before labels,
    labels before digit layouts, opaque high-entropy strings last."""
    rules = [
        Rule("private_key", key_block, ("-----begin",)),
        Rule("url_password", regex(URL_PASSWORD, 2, cli_value), ("://",)),
        Rule("jwt", regex(JWT, check=jwt_ok), ("eyj",)),
        Rule("aws_key", regex(AWS_ID), ("a",)),
    ]
    for kind, hint, pattern in PROVIDER:
        rules.append(Rule(kind, regex(pattern), (hint,)))
    rules.extend(Rule("provider_token", regex(p), h, n) for p, h, n in _plugin_patterns())
    # Case-insensitive patterns try every position: they run only near their hints.
    rules += [
        Rule(
            "azure_key",
            regex(AZURE, 1, lambda v: len(v) >= 20 and token_shaped(v, 20), lowered=True),
            ("accountkey", "sharedaccess"),
            540,
        ),
        Rule("auth_header", authorization, ("authori",), 540),
        Rule("auth_header", regex(BEARER, 1, token_shaped, lowered=True), ("bearer",), 520),
    ]
    rules.extend(
        Rule("cli_password", regex(p, 1, cli_value, lowered=True), h, n) for p, h, n in CLI
    )
    rules += [
        Rule(
            "url_secret", regex(URL_PARAM, 1, lambda v: len(v) >= 8 and token_shaped(v, 8)), ("=",)
        ),
        Rule("totp_secret", regex(TOTP_URL, 1, lowered=True), ("otpauth",), 450),
        Rule("password", labelled),
        Rule("seed_phrase", _seed_phrase),
        Rule("iban", iban),
        Rule("card", cards),
        Rule("ssn", ssn),
        Rule("ssn", ssn_spaced, SSN_HINTS, 80),
        Rule("recovery_code", recovery, RECOVERY_HINTS),
        Rule("totp_secret", totp, TOTP_HINTS, 300),
        Rule("high_entropy", _long_tokens),
    ]
    return tuple(rules)


@dataclass(frozen=True)
class Redaction:
    text: str
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class Redactor:
    """Applies the rules in order; each sees the text with earlier rules' masks in place."""

    def __init__(
        self, rules: tuple[Rule, ...] | None = None, budget_s: float | None = None
    ) -> None:
        self._rules = rules
        self.budget_s = budget_s
        if rules is None:  # compile the rules and load the word list now, not inside a budget
            default_rules()
            _seed_marks()

    def redact(self, text: str, budget_s: float | None = None) -> Redaction:
        """`text` with every secret masked. Raises `RedactionTooSlow` past `budget_s` (or the
        redactor's own budget): the caller drops the text instead of keeping it unredacted."""
        budget = budget_s if budget_s is not None else self.budget_s
        deadline = time.perf_counter() + budget if budget is not None else None
        counts: Counter[str] = Counter()
        lowered = lower(text)
        present: dict[str, bool] = {}  # hints and characters, each looked for once
        current: str | None = lowered
        for rule in self._rules if self._rules is not None else default_rules():
            if rule.hints and not any(_has(lowered, h, present) for h in rule.hints):
                continue
            if rule.near:
                if current is None:
                    current = lower(text)
                found = _near(text, current, rule)
            else:
                found = rule.find(text)
            hits = _merged(found, rule.kind)
            if hits:
                parts, at = [], 0
                for start, end, kind in hits:
                    parts += [text[at:start], mask(kind)]
                    counts[kind] += 1
                    at = end
                parts.append(text[at:])
                text = "".join(parts)
                current = None  # windows are found on the text as it is now
            if deadline is not None and time.perf_counter() > deadline:
                raise RedactionTooSlow(
                    f"redacting {len(text):,} characters took over {budget:.2f} s; the text "
                    "was dropped"
                )
        return Redaction(text, dict(counts))


def _has(lowered: str, hint: str, present: dict[str, bool]) -> bool:
    """Whether `hint` occurs in `lowered`, remembered in `present` with each of its characters:
    a character is found (or not) at memchr speed, so a hint with one absent character costs
    no scan of its own."""
    found = present.get(hint)
    if found is None:
        for char in hint:
            there = present.get(char)
            if there is None:
                there = present[char] = char in lowered
            if not there:
                found = False
                break
        else:
            found = hint in lowered
        present[hint] = found
    return found


#: How far a window grows past its bounds to reach whitespace, so a finder's look-behinds and
#: look-aheads see a token's real edges rather than the window's.
_EDGE = 200
_SPACE = re.compile(r"\s")


def _near(text: str, lowered: str, rule: Rule) -> Iterator[Hit]:
    """`rule.find` on the windows `rule.near` characters around each of its hints, merged;
    the whole text when they would cover much of it."""
    near = rule.near
    windows: list[tuple[int, int]] = []
    most = len(text) // (4 * near) + 1  # more windows than this: scan the whole text
    for hint in rule.hints:
        at = lowered.find(hint)
        while at != -1 and len(windows) <= most:
            windows.append((max(0, at - near), at + len(hint) + near))
            at = lowered.find(hint, at + 1)
    if len(windows) > most:
        yield from rule.find(text)
        return
    merged: list[list[int]] = []
    for start, end in sorted(windows):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    for start, end in merged:
        start, end = _widen(text, start, end)
        for hit in rule.find(text[start:end]):
            yield (hit[0] + start, hit[1] + start, *hit[2:])


def _widen(text: str, start: int, end: int) -> tuple[int, int]:
    """The window moved out to the whitespace before `start` and after `end` (at most `_EDGE`
    characters each way)."""
    if start > 0:
        before = text[max(0, start - _EDGE) : start]
        spaces = [m.start() for m in _SPACE.finditer(before)]
        start = start - len(before) + spaces[-1] if spaces else max(0, start - _EDGE)
    if end < len(text):
        m = _SPACE.search(text, end, end + _EDGE)
        end = m.start() + 1 if m else min(len(text), end + _EDGE)
    return start, min(end, len(text))


def _merged(hits: Iterator[Hit], kind: str) -> list[tuple[int, int, str]]:
    out: list[tuple[int, int, str]] = []
    for hit in sorted(hits):
        start, end = hit[0], hit[1]
        if end <= start:
            continue
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end), out[-1][2])
        else:
            out.append((start, end, hit[2] if len(hit) == 3 else kind))
    return out


def redact(text: str) -> Redaction:
    return Redactor().redact(text)


def redact_then_cut(redactor: Redactor, text: str, limit: int) -> Redaction:
    """Redact the whole text, then cut it to `limit` characters without splitting a mask, so a
    secret across the cut is neither kept in part nor left half-masked."""
    result = redactor.redact(text)
    if len(result.text) <= limit:
        return result
    cut = limit
    opened = result.text.rfind("[REDACTED:", max(0, limit - 40), limit)
    if opened != -1 and result.text.find("]", opened) >= limit:
        cut = opened
    return Redaction(result.text[:cut], result.counts)
