"""Labelled values: "password: …", "DB_PASSWORD=…", "api_key = '…'", a form's "Password
Qw7!…" on one OCR line or with its value on the next. The label says what the value is; the
checks in capture/secret_shapes.py say whether it is one (a secret, or prose, code or a
placeholder). One of the rules capture/redact.py runs; linear like the others: labels are
tried only where one of their roots occurs, and a value is read at most `_VALUE_MAX`
characters far.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from capture.secret_shapes import (
    Span,
    bare,
    is_code,
    is_masked,
    is_placeholder,
    is_prose,
    lower,
    mostly_digits,
    password_shaped,
    plain_token,
    starts,
    token_shaped,
)

#: Longest value a label may own: a line of 100,000 characters with a label every few words
#: must not make each label scan to the end of the line.
_VALUE_MAX = 200

#: Labels whose value is a secret whatever it looks like (once it is not prose or code).
_STRONG = (
    r"pass(?:w[o0]rd|wd|w[o0]rt|phrase|code)|pwd|pw|mot[ ]de[ ]passe|contrase(?:ñ|n)a|senha"
    r"|wachtwoord"
    r"|l(?:ö|o)senord|salasana|has(?:ł|l)o|kennwort|parola|(?<=_)pass"
)
#: Labels whose value must look like a key or token ("token: see the API docs" is not one).
_WEAK = (
    r"client[ _-]?secret|secret[ _-]?(?:access[ _-]?)?key|secret|api[ _-]?key|apikey"
    r"|access[ _-]?key(?:[ _-]?id)?|private[ _-]?key|(?:auth|access|refresh|bearer|session|api"
    r")[ _-]?token|token|x-api-key|credentials?|signing[ _-]?key|encryption[ _-]?key"
    r"|master[ _-]?key|license[ _-]?key|webhook[ _-]?secret|jwt[ _-]?secret|salt"
)
#: Labels of a short numeric code.
_NUMERIC = (
    r"pin(?:[ ]?code)?|cvv2?|cvc2?|security[ ]code|verification[ ]code|one[- ]time[ ](?:code|pin)"
    r"|otp|2fa[ ]code|sms[ ]code|auth(?:entication)?[ ]code|geheimzahl|code[ ]pin"
)
#: Where a label can start: the text is searched for these first (fast literal searches), and
#: the label pattern is tried only there.
_LABEL_ROOTS = (
    "pass", "pw", "mot de", "contrase", "senha", "wachtwoord", "senord", "salasana", "has",
    "kennwort", "parola", "client", "secret", "api", "access", "private", "auth", "refresh",
    "bearer", "session", "token", "x-api", "credential", "signing", "encryption", "master",
    "license", "webhook", "jwt", "salt", "pin", "cvv", "cvc", "security", "verification",
    "one-time", "one time", "otp", "2fa", "sms", "geheimzahl", "code",
)  # fmt: skip
#: Suffixes that make a label name a rule or a field, not a value ("PASSWORD_MIN_LENGTH=8").
_NOT_VALUE = re.compile(
    r"[_ .-](?:min|max|len|length|policy|rules?|file|path|url|hash|hashed|hint|field|prompt"
    r"|reset|label|count|age|timeout|attempts|enabled|required|expiry|expires|history|strength"
    r"|type|format|name|regex|pattern|manager|store|env|var|header|param)\b"
)
_LABEL = re.compile(  # matched on the ASCII-lowered text
    rf"(?<![a-z])(?:(?P<strong>{_STRONG})|(?P<numeric>{_NUMERIC})|(?P<weak>{_WEAK}))"
    r"(?P<suffix>(?:[_.-][a-z0-9]{1,12}){0,3})(?![a-z])"
    r"(?P<sep>[\"'\]]{0,2}[ \t]*(?:[:=]{1,2}|=>|->|：)[ \t]*"  # password: x, PASSWORD=x, "k": "v"
    r"|[ \t]+(?:is|was|ist|est|es)[ \t]+"  # my password is x
    r"|[ \t]*\n[ \t]*(?=[^\n]{1,80}(?:\n|$))"  # a form: the label, its value on the next line
    r"|[ \t]+)"  # a form's columns on one OCR line: "Username sam  Password Qw7!x"
)
_QUOTED = re.compile(r"([\"'`])([^\"'`\n]{1,200})\1")
_SPLIT = re.compile(r"[;,\s]")
_SPLIT_QUERY = re.compile(r"[;&,\s]")


def labelled(text: str) -> Iterator[Span]:
    lowered = lower(text)
    done = 0
    # A page of the same few labels and values asks the same question again and again: each
    # answer is kept for the length of this call only.
    decided: dict[tuple[str | None, str | None, str | None, bool, str], bool] = {}
    match = _LABEL.match
    for at in starts(lowered, _LABEL_ROOTS):
        if at < done:
            continue
        m = match(lowered, at)
        if m is None:
            continue
        strong, numeric, weak, suffix, sep = m.groups()  # one call: a page of labels
        if suffix and _NOT_VALUE.search(suffix + " "):
            continue
        start = m.end()
        rest = text[start : start + _VALUE_MAX]
        if "\n" in rest:
            rest = rest[: rest.index("\n")]
        rest = rest.rstrip()
        if not rest or rest.lstrip("\"'`").startswith("[REDACTED:"):  # empty, or masked
            continue
        bare_sep = sep if sep == "=" else sep.strip(" \t\"']")
        spaced = bare_sep in _SPACED
        if rest[0] in "\"'`" and (quoted := _QUOTED.match(rest)):
            value, begin = quoted.group(2), start + 1
        elif numeric or spaced or "=" in bare_sep or weak:
            # A query string ends a value at "&"; elsewhere "&" may be part of it.
            split = _SPLIT_QUERY if at and lowered[at - 1] in "?&" else _SPLIT
            cut = split.search(rest)
            value, begin = (rest[: cut.start()] if cut else rest), start
        else:
            value, begin = rest, start  # "password: hunter2 extra": the rest of the line
        key = (strong, numeric, weak, spaced or "\n" in sep, value)
        secret = decided.get(key)
        if secret is None:
            secret = decided[key] = _is_secret(*key)
        if secret:
            done = begin + len(value)
            yield begin, done


_SPACED = frozenset(("", "is", "was", "ist", "est", "es"))


def _is_secret(
    strong: str | None, numeric: str | None, weak: str | None, spaced: bool, value: str
) -> bool:
    """Cheap tests first: a label every few words must not cost a regex each."""
    if numeric:
        return len(value) >= 3 and 3 <= len(bare(value)) <= 10 and mostly_digits(value)
    plain = plain_token(value)
    if weak:  # token_shaped also turns down placeholders and code
        least = 16 if weak == "salt" else 6
        return len(value) >= least and (plain or token_shaped(value, least))
    if plain and not spaced:
        return True
    if is_masked(value) or is_placeholder(value) or is_code(value):
        return False
    if spaced:
        return password_shaped(value)
    if strong == "passphrase":
        return not is_prose(value) or len(value.split()) >= 4
    return not is_prose(value)
