"""Redact secrets from captured text before anything is written, keeping only counts per kind.

Each rule is a pattern plus, where the format has one, a checksum (Luhn for payment cards, ISO
7064 mod 97 for IBANs, a JSON header for JWTs), so a random 16-digit number or an order id is left
alone. A match is replaced by `[REDACTED:<kind>]`; the value itself is never kept, logged or
counted beyond "one more of this kind".
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

Check = Callable[[str], bool]


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = ord(ch) - 48
        if i % 2 == 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _card(match: str) -> bool:
    digits = re.sub(r"\D", "", match)
    # Issuer prefixes in use start with 2-6 (Mastercard 2-series, Amex/Diners/JCB 3, Visa 4,
    # Mastercard 5, Discover/UnionPay 6); a long number starting with 0, 1, 7, 8 or 9 is not a card.
    return 13 <= len(digits) <= 19 and digits[0] in "23456" and luhn_ok(digits)


#: IBAN lengths by country (ISO 13616 registry), so an arbitrary code that happens to pass
#: mod 97 in a foreign length is not taken for one.
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip


def iban_ok(match: str) -> bool:
    iban = re.sub(r"\s", "", match).upper()
    if IBAN_LENGTHS.get(iban[:2]) != len(iban):
        return False
    moved = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def _jwt(match: str) -> bool:
    head = match.split(".", 1)[0]
    try:
        decoded = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return False
    return isinstance(decoded, dict) and ("alg" in decoded or "typ" in decoded)


Spans = Callable[[re.Match[str]], list[tuple[int, int]]]


@dataclass(frozen=True)
class Rule:
    kind: str
    pattern: re.Pattern[str]
    check: Check | None = None
    #: Regex group holding the value to replace (0 = the whole match); the rest is kept.
    group: int = 0
    #: For formats printed in groups (cards, IBANs): the spans of the match to redact.
    spans: Spans | None = None


def _grouped(check: Check, min_len: int) -> Spans:
    """Spans made of whole digit/letter groups that pass `check`, longest first.

    A greedy pattern may run on into the next number ("4111 1111 1111 1111 12"), so every run of
    whole groups is tried, not only the full match.
    """

    def spans(match: re.Match[str]) -> list[tuple[int, int]]:
        groups = [(m.start(), m.end()) for m in re.finditer(r"[A-Za-z0-9]+", match.group(0))]
        found: list[tuple[int, int]] = []
        i = 0
        while i < len(groups):
            for j in range(len(groups) - 1, i - 1, -1):
                start, end = groups[i][0], groups[j][1]
                value = match.group(0)[start:end]
                if len(re.sub(r"[^A-Za-z0-9]", "", value)) >= min_len and check(value):
                    found.append((start, end))
                    i = j
                    break
            i += 1
        return found

    return spans


_KEY_BLOCK = re.compile(
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
    r"(?:[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"  # the whole block, or
    r"|(?:\n[ \t]*(?:[A-Za-z0-9+/=]{16,}|(?:Proc-Type|DEK-Info|Comment):[^\n]*)?[ \t]*"
    r"(?=\n|$))*)"  # its body, as far as it goes (the END line may be off screen)
)

#: `password: hunter2`, `API_KEY=...`, `client secret = ...`: the label stays, the value goes.
_LABELLED = re.compile(
    r"(?im)\b(?:pass(?:word|wd|phrase)?|pwd|pin|secret|client[ _-]?secret|api[ _-]?key"
    r"|access[ _-]?key|secret[ _-]?key|private[ _-]?key|auth[ _-]?token|access[ _-]?token"
    r"|token)\b[ \t]*[:=][ \t]*(\S[^\n]*)"
)

RULES: tuple[Rule, ...] = (
    Rule("private_key", _KEY_BLOCK),
    Rule(
        "jwt",
        re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
        _jwt,
    ),
    Rule("aws_key", re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}\b")),
    Rule(
        "aws_secret",
        re.compile(r"(?i)\baws_?secret_?(?:access_?)?key\b\W{0,4}([A-Za-z0-9/+]{40})\b"),
        group=1,
    ),
    Rule("github_token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_\w{22,255})")),
    Rule("slack_token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    Rule(
        "slack_webhook",
        re.compile(r"https://hooks\.slack\.com/services/T\w+/B\w+/\w+"),
    ),
    Rule("stripe_key", re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}|\bwhsec_\w{24,}")),
    Rule(
        "ai_key",  # OpenAI (sk-, sk-proj-, sk-svcacct-) and Anthropic (sk-ant-...)
        re.compile(r"\bsk-(?:ant-|proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"),
    ),
    Rule("google_key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b|\bya29\.[0-9A-Za-z_-]{20,}")),
    Rule("google_secret", re.compile(r"\bGOCSPX-[0-9A-Za-z_-]{20,}")),
    Rule("password", _LABELLED, group=1),
    Rule(
        "iban",
        re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,40}\b"),
        spans=_grouped(iban_ok, 15),
    ),
    Rule("card", re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,}(?![\d-])"), spans=_grouped(_card, 13)),
)


@dataclass(frozen=True)
class Redaction:
    text: str
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class Redactor:
    """Applies the rules in order (key blocks first, card numbers last)."""

    def __init__(self, rules: tuple[Rule, ...] = RULES) -> None:
        self._rules = rules

    def redact(self, text: str) -> Redaction:
        counts: Counter[str] = Counter()
        for rule in self._rules:
            text = rule.pattern.sub(functools.partial(_replace, rule=rule, counts=counts), text)
        return Redaction(text, dict(counts))


def _replace(match: re.Match[str], rule: Rule, counts: Counter[str]) -> str:
    whole = match.group(0)
    if rule.spans is not None:
        spans = rule.spans(match)
    else:
        value = match.group(rule.group)
        if not value or value.startswith("[REDACTED:"):
            return whole
        if rule.check is not None and not rule.check(value):
            return whole
        spans = [(match.start(rule.group) - match.start(0), match.end(rule.group) - match.start(0))]
    for start, end in reversed(spans):
        counts[rule.kind] += 1
        whole = f"{whole[:start]}[REDACTED:{rule.kind}]{whole[end:]}"
    return whole


def redact(text: str) -> Redaction:
    return Redactor().redact(text)
