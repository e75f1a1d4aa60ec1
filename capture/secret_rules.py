"""The redactor's rules that need no engine: where secrets are, by their shape on screen.

Provider prefixes (OCR-tolerant), PEM key blocks, JWTs, Authorization headers, command lines
(sshpass, mysql -p, --password=), URLs with credentials, TOTP keys, recovery codes, long tokens
(wallet keys, AWS secrets), SSNs, IBANs and cards; labelled values ("password: …") have their
own module, capture/secret_labels.py. Each finder yields spans; capture/redact.py runs them in
order with the engine-backed ones (detect-secrets, BIP-39) and masks what they find.

Every pattern is linear: bounded repeats, a literal first where the regex engine can search
for it, and value scans capped in length.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterator

from capture.secret_shapes import (
    DIGIT,
    HEX,
    IBAN_LENGTHS,
    Finder,
    Span,
    as_hex,
    card_ok,
    digit_count,
    fold,
    iban_ok,
    is_masked,
    is_placeholder,
    lower,
    mostly_digits,
    ocr_literal,
    ssn_ok,
    starts,
    token_shaped,
)


def regex(
    pattern: str | re.Pattern[str],
    group: int = 0,
    check: Callable[[str], bool] | None = None,
    flags: int = 0,
    lowered: bool = False,
) -> Finder:
    """Spans of `group` where `check` passes on its value. With `lowered`, `pattern` (written
    in lower case, without `(?i)`) is matched on the ASCII-lowered text: the regex engine then
    skips ahead to a first character instead of trying each position both ways, and the value
    checked is the original text at the same place."""
    compiled = re.compile(pattern, flags) if isinstance(pattern, str) else pattern

    def find(text: str) -> Iterator[Span]:
        decided: dict[str, bool] = {}  # a page of one URL asks once, for this call only
        for m in compiled.finditer(lower(text) if lowered else text):
            start, end = m.span(group)
            value = text[start:end]
            if not value or is_masked(value):
                continue
            if check is not None:
                ok = decided.get(value)
                if ok is None:
                    ok = decided[value] = check(value)
                if not ok:
                    continue
            yield start, end

    return find


def _o(literal: str) -> str:
    return ocr_literal(literal)


# ----- provider tokens -----------------------------------------------------------------------

_ALNUM = "[A-Za-z0-9]"
_E = r"(?![A-Za-z0-9_])"


def _tok(prefix: str, body: str) -> str:
    """A token that starts with `prefix` (fixed width) where no word character comes before it.
    The check sits after the prefix so the regex engine can search for the prefix first."""
    return rf"{prefix}(?<![A-Za-z0-9_]{prefix}){body}"


_GITLAB = "pat|dt|ft|soat|rt|cbt|imt|ptt|agent|oas"
#: Our own patterns, OCR-tolerant in their fixed prefixes: (kind, a lowercase hint, pattern).
PROVIDER: tuple[tuple[str, str, str], ...] = (
    ("github_token", "_", _tok("gh[pousr]_", f"{_ALNUM}{{30,255}}")),
    ("github_token", "github_pat_", _tok("github_pat_", r"\w{22,255}")),
    ("gitlab_token", "-", _tok(_o("gl"), rf"(?:{_GITLAB})-[\w-]{{20,1024}}")),
    ("slack_token", "xox", _tok("xox[abposr]-", "[A-Za-z0-9-]{10,250}")),
    ("slack_webhook", "hooks.slack", r"https://hooks\.slack\.com/services/T\w+/B\w+/\w+"),
    ("stripe_key", "_", _tok("[sr]k_", f"{_o('live')}_{_ALNUM}{{16,247}}")),
    ("stripe_key", "whsec_", _tok("whsec_", r"\w{24,}")),
    ("ai_key", "sk-", _tok("sk-", r"(?:ant-|proj-|svcacct-|admin-|or-)?[A-Za-z0-9_-]{20,250}")),
    ("google_key", "za", _tok(_o("AIza"), f"[0-9A-Za-z_-]{{35}}{_E}")),
    ("google_key", "ya29", _tok(r"ya29\.", "[0-9A-Za-z_-]{20,}")),
    ("google_secret", "gocspx", _tok("GOCSPX-", "[0-9A-Za-z_-]{20,}")),
    ("huggingface_token", "hf_", _tok("hf_", f"{_ALNUM}{{30,60}}{_E}")),
    ("huggingface_token", "api_org_", _tok("api_org_", f"{_ALNUM}{{30,60}}{_E}")),
    ("npm_token", "npm_", _tok("npm_", f"{_ALNUM}{{30,60}}{_E}")),
    ("npm_token", "_authtoken", r"_authToken=([^\s\"']{8,200})"),
    ("sendgrid_key", "sg.", _tok(r"SG\.", r"[\w-]{16,32}\.[\w-]{30,64}")),
    ("digitalocean_token", "_v", _tok("do[opr]_v", f"{_o('1')}_{HEX}{{60,68}}{_E}")),
    ("pypi_token", "pypi-", _tok("pypi-", r"[\w-]{50,}")),
    ("provider_token", "shp", _tok("shp(?:at|ca|pa|ss)_", f"{HEX}{{32}}{_E}")),
    ("provider_token", "lin_api_", _tok("lin_api_", f"{_ALNUM}{{32,60}}")),
    ("provider_token", "ntn_", _tok("ntn_", f"{_ALNUM}{{40,50}}{_E}")),
    ("provider_token", "secret_", _tok("secret_", f"{_ALNUM}{{40,50}}{_E}")),
    ("provider_token", "atatt3", _tok("ATATT3", r"[\w=-]{60,}")),
    ("provider_token", "dckr_pat_", _tok("dckr_pat_", r"[\w-]{20,}")),
    ("provider_token", "age-secret-key-1", _tok("AGE-SECRET-KEY-1", "[0-9A-Z]{50,}")),
    ("provider_token", "hv", _tok(r"hv[sbr]\.", r"[\w-]{24,}")),
    ("provider_token", "pmak-", _tok("PMAK-", f"{HEX}{{24}}-{HEX}{{34}}")),
    ("provider_token", "tskey-", _tok("tskey-", r"[\w-]{20,}")),
    ("provider_token", "gsk_", _tok("gsk_", r"[\w-]{30,}")),
    ("provider_token", "r8_", _tok("r8_", r"[\w-]{30,}")),
    ("provider_token", "xai-", _tok("xai-", r"[\w-]{40,}")),
    ("provider_token", "figd_", _tok("figd_", r"[\w-]{30,}")),
    ("provider_token", "sntr", _tok("sntr[ysu]_", r"[\w=+/-]{30,}")),
    ("provider_token", "sq0", _tok("sq0(?:atp|csp)-", r"[\w-]{22,}")),
    # Telegram bot and Discord tokens: the secret part, searched for from its "." or ":".
    ("provider_token", ":", r":(?<=\d{8}:)[0-9A-Za-z_-]{35}(?![\w-])"),
    (
        "provider_token",
        ".",
        r"\.(?:(?<=[MNO][\w-]{23}\.)|(?<=[MNO][\w-]{24}\.)|(?<=[MNO][\w-]{25}\.))"
        r"[\w-]{6}\.[\w-]{27}(?![\w-])",
    ),
)  # fmt: skip

# ----- JWTs, AWS ids, key blocks --------------------------------------------------------------


def jwt_ok(match: str) -> bool:
    head = match.split(".", 1)[0]
    try:
        decoded = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        # An OCR swap broke the header: three long segments starting "eyJ" are still a token.
        parts = match.split(".")
        return len(parts) == 3 and len(parts[1]) >= 10 and len(parts[2]) >= 20
    return isinstance(decoded, dict) and ("alg" in decoded or "typ" in decoded)


JWT = _tok("eyJ", r"[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
AWS_ID = _tok("A", rf"(?:[KS][I1l|]A|BIA|CCA|3T[A-Z0-9])[A-Z0-9]{{16}}{_E}")

_KEY_BEGIN = re.compile(r"-----BEGIN (?:[A-Z0-9]{1,20} ){0,4}PRIVATE KEY(?: BLOCK)?-----")
_KEY_END = re.compile(r"-----END (?:[A-Z0-9]{1,20} ){0,4}PRIVATE KEY(?: BLOCK)?-----")
#: A key's body as far as it goes when its END line is off screen.
_KEY_BODY = re.compile(
    r"(?:\n[ \t]*(?:[A-Za-z0-9+/=]{16,}|(?:Proc-Type|DEK-Info|Comment):[^\n]*)?[ \t]*(?=\n|$))*"
)
_KEY_MAX = 16_000  # an RSA-8192 PEM is under 7,000 characters


def key_block(text: str) -> Iterator[Span]:
    """A PEM private key: BEGIN to END when the END line follows, else BEGIN and its body."""
    ends = [m.end() for m in _KEY_END.finditer(text)]
    e = 0
    for m in _KEY_BEGIN.finditer(text):
        while e < len(ends) and ends[e] <= m.end():
            e += 1
        if e < len(ends) and ends[e] - m.start() <= _KEY_MAX:
            yield m.start(), ends[e]
        else:
            body = _KEY_BODY.match(text, m.end())
            yield m.start(), body.end() if body else m.end()


# ----- headers, command lines, URLs --------------------------------------------------------------

_AUTH = re.compile(
    r"authori(?<![A-Za-z]authori)[sz]ation[\"']?[ \t]*[:=][ \t]*[\"']?"
    r"(?:(bearer|basic|token|digest|negotiate|apikey|sso-key|key|hmac|aws4-hmac-sha256)[ \t]+)?"
    r"([^\s\"',;]{1,500})"
)


def authorization(text: str) -> Iterator[Span]:
    """An Authorization header's credential: after a scheme word any value of 8+ characters,
    without one a value that looks like a token ("Authorization: required" is not one)."""
    for m in _AUTH.finditer(lower(text)):
        start, end = m.span(2)
        value = text[start:end]
        if is_masked(value) or not cli_value(value):
            continue
        if len(value) >= 8 if m.group(1) else token_shaped(value, 8):
            yield start, end


BEARER = re.compile(r"bearer(?<![A-Za-z]bearer)[ \t]+([A-Za-z0-9._~+/=-]{16,500})")
#: Command lines that carry a password: (pattern, lowercase hints, how far from a hint a match
#: reaches). These, `BEARER`, `AZURE`, `TOTP_URL` and `_AUTH` are matched on lowered text, and
#: each starts with a literal (its word boundary is a look-behind after it) so the regex engine
#: searches for that literal instead of trying every position.
CLI = (
    (r"sshpass(?<!\wsshpass)[ \t]+-p[ \t]*[\"']?([^\s\"']{1,200})", ("sshpass",), 220),
    (
        r"m(?<!\wm)(?:ysql|ysqldump|ysqladmin|ariadb(?:-dump)?|ysqlsh)\b[^\n]{0,200}?[ \t]-p"
        r"[\"']?([^\s\"'-][^\s\"']{0,199})",
        ("mysql", "mariadb"),
        420,
    ),
    (
        r"--(?<![\w-]--)(?:password|passwd|pass|token|api-key|apikey|secret|client-secret"
        r"|auth-token|access-token|db-password)(?:=|[ \t]+)[\"']?([^\s\"'-][^\s\"']{0,199})",
        ("--",),
        240,
    ),
    (
        r"redis-cli(?<!\wredis-cli)\b[^\n]{0,200}?[ \t]-a[ \t]+[\"']?([^\s\"']{1,200})",
        ("redis-cli",),
        420,
    ),
    (
        r"curl(?<!\wcurl)\b[^\n]{0,200}?[ \t](?:-u|--user)[ \t]+[\"']?[^\s:\"']{0,100}"
        r":([^\s\"']{1,200})",
        ("curl",),
        520,
    ),
    (
        r"[dpho](?<!\w[dpho])(?:ocker|odman|elm|ras)[ \t]+(?:registry[ \t]+)?login\b"
        r"[^\n]{0,200}?[ \t]-p[ \t]+[\"']?([^\s\"']{1,200})",
        ("login",),
        440,
    ),
)
#: `scheme://user:password@host` (postgres, redis with an empty user, https, amqp, …).
URL_PASSWORD = re.compile(r"://([^\s:/@\"'<>]{0,100}):([^\s@/\"'<>]{1,200})@")
URL_PARAM = re.compile(
    r"(?i)[?&;](?:password|passwd|pwd|pass|secret|client_secret|access_token|refresh_token"
    r"|id_token|token|api_key|apikey|api-key|key|sig|signature|auth|x-amz-signature"
    r"|x-goog-signature|secret=|code_verifier)=([^&\s#\"'<>]{8,500})"  # shorter: never a secret
)


AZURE = re.compile(
    r"(?:accountkey|sharedaccesskey|sharedaccesssignature)[ \t]*=[ \t]*"
    r"([A-Za-z0-9+/=%]{20,500})"
)


def cli_value(value: str) -> bool:
    return not is_placeholder(value) and not value.startswith("$")


# ----- one-time codes, recovery codes, seed phrases, wallet keys, national ids -------------------

TOTP_URL = re.compile(r"otpauth://[^\s]{0,300}?[?&]secret=([A-Za-z0-9=]{8,128})")
_BASE32_GROUPED = re.compile(
    r"[A-Za-z0-9](?<![A-Za-z0-9]{2})[A-Za-z0-9]{3}[ ](?:[A-Za-z0-9]{4}[ ]){2,14}[A-Za-z0-9]{2,4}"
    r"(?![A-Za-z0-9])"
)
#: What every grouped key holds (its second group and the start of its third): when the text
#: has none, the grouped pattern, which tries each letter or digit, need not run.
_INNER_GROUP = re.compile(r"[ ][A-Za-z0-9]{4}[ ][A-Za-z0-9]{2}")
_TOTP_CONTEXT = re.compile(
    r"(?i)setup[ ]key|secret|\bkey\b|authenticator|\btotp\b|\b2fa\b|two[- ]factor|\botp\b"
    r"|manual(?:ly)?[ ]entry|can'?t scan|enter this code"
)
TOTP_HINTS = ("key", "secret", "authenticator", "totp", "2fa", "factor", "otp", "manual", "scan")


def totp_context(text: str, start: int) -> bool:
    window = text[max(0, start - 200) : start].lower()  # words are looked for, not spans
    return any(h in window for h in TOTP_HINTS) and bool(_TOTP_CONTEXT.search(window))


_BASE32_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")


def base32_key(value: str) -> bool:
    """Base32 as a TOTP setup key is written: one case, letters and 2-7 (OCR's 0/1/8 folded)."""
    value = value.replace(" ", "")
    if len(value) < 16 or "9" in value:
        return False
    # Counted with C-speed map and count: str.translate has a set-up cost per call.
    upper = sum(map(str.isupper, value))
    lower = len(value) - upper - sum(map(str.isdigit, value))
    if min(upper, lower) > 2:
        return False  # one case, bar an OCR slip ("QTTl")
    folded = value.upper().replace("0", "O").replace("1", "I").replace("8", "B")
    if not _BASE32_ALPHABET.issuperset(folded):
        return False
    digits = sum(map(folded.count, "234567"))
    return digits >= 2 and len(folded) - digits >= 8


def totp(text: str) -> Iterator[Span]:
    """A TOTP setup key in groups of four ("JBSW Y3DP EHPK 3PXP") beside words about keys;
    an unbroken one is found with the other long tokens (`_long_tokens`)."""
    if not _INNER_GROUP.search(text):  # searched for from a space: no per-position tries
        return
    for m in _BASE32_GROUPED.finditer(text):
        if totp_context(text, m.start()) and base32_key(m.group(0)):
            yield m.span()


_RECOVERY_HEAD = re.compile(
    r"(?i)(?:recovery|backup|emergency|one[- ]time|scratch|rescue|reset)[ -]?(?:codes?|keys?)"
    r"|wiederherstellungs-?(?:codes?|schlüssel)|codes? de (?:récupération|secours)"
    r"|códigos de (?:recuperación|respaldo)"
)
RECOVERY_HINTS = (
    "recovery", "backup", "emergency", "one-time", "one time", "scratch", "rescue", "reset",
    "wiederherstellung", "récupération", "secours", "recuperación", "respaldo",
)  # fmt: skip
#: Where a heading can start ("digos" two characters in, past a "CÓ" that ASCII lowering keeps).
_HEAD_ROOTS = (
    "recovery", "backup", "emergency", "one-time", "one time", "scratch", "rescue", "reset",
    "wiederherstellungs", "code",
)  # fmt: skip
_CODE_TOKEN = re.compile(
    r"(?<![\w-])(?:[A-Za-z0-9]{4,6}(?:-[A-Za-z0-9]{4,6}){1,3}"
    r"|[A-Za-z0-9]{4,6}(?: [A-Za-z0-9]{4,6}){1,3}"
    r"|[A-Za-z0-9]{8,16})(?![\w-])"
)


def _code_shaped(value: str) -> bool:
    """One recovery code: groups of one case joined by dashes, or digits in it."""
    digits = sum(c.isdigit() for c in value)
    if "-" in value:
        groups = value.split("-")
        one_case = all(
            min(sum(c.isupper() for c in g), sum(c.islower() for c in g)) <= 1 for g in groups
        )
        return one_case and (digits >= 1 or len(groups) >= 3)
    return digits >= 2 and sum(c.isalnum() for c in value) >= 8


_WINDOW = 800


def recovery(text: str) -> Iterator[Span]:
    """Codes listed under a "recovery codes" heading (GitHub's xxxxx-xxxxx are found anywhere
    with the long tokens)."""
    lowered = lower(text)
    end = done = 0
    for at in sorted({*starts(lowered, _HEAD_ROOTS), *starts(lowered, ("digos de",), 2)}):
        head = _RECOVERY_HEAD.match(text, at) if at >= done else None
        if head is None:
            continue
        done = head.end()
        begin = max(head.end(), end)
        end = head.end() + _WINDOW
        for m in _CODE_TOKEN.finditer(text, begin, end):
            if _code_shaped(m.group(0)):
                yield m.span()


# ----- long tokens: opaque keys, wallet keys, AWS secrets, base32 keys, recovery codes ------------

LONG = re.compile(r"[A-Za-z0-9+/_-]{11,2000}={0,2}")
_HASH_CONTEXT = re.compile(
    r"(?i)\b(?:tx|txn|transaction|hash|block|commit|sha-?\d*|digest|checksum|fingerprint|md5)\b"
)
_KEY_CONTEXT = re.compile(r"(?i)private|secret|\bkey\b|wallet|seed|export|mnemonic")
_AWS_ACCESS = re.compile(r"secret[ _]?access[ _]?key")
_GITHUB_RECOVERY = re.compile(r"[0-9a-f]{5}-[0-9a-f]{5}")
_HEXCHARS = frozenset("0123456789abcdefABCDEF")


def long_kind(text: str, value: str, start: int, opaque: Callable[[str], bool]) -> str | None:
    """The kind of secret a long unbroken token is, if any (`opaque`: the entropy check)."""
    n = len(value)
    if n < 16 and n != 11:
        return None
    if n == 11:
        hexed = as_hex(value)
        if not _GITHUB_RECOVERY.fullmatch(hexed):
            return None
        letters = any(c in "abcdef" for c in hexed)
        return "recovery_code" if letters and any(c.isdigit() for c in value) else None
    hexed = as_hex(value) if n in (64, 66) else ""
    body = hexed[2:] if hexed[:2].lower() == "0x" else hexed
    if len(body) == 64 and _HEXCHARS.issuperset(body) and not body.isdigit():
        before = text[max(0, start - 200) : start]
        # A wallet's private key: with 0x unless the line is about a hash; bare beside key words.
        line = before[before.rfind("\n", 0, max(0, before.rfind("\n"))) + 1 :]
        if _HASH_CONTEXT.search(line):
            return None
        return "eth_private_key" if len(body) < n or _KEY_CONTEXT.search(line) else None
    if (
        38 <= n <= 42
        and _aws_shaped(value)
        and _aws_context(text[max(0, start - 300) : start].lower())
    ):
        return "aws_secret"
    if value.isalnum() and base32_key(value) and totp_context(text, start):
        return "totp_secret"
    if n >= 32 and opaque(value):
        return "high_entropy"
    return None


def _aws_shaped(value: str) -> bool:
    """40 characters of base64 with digits and upper case or a slash: a secret access key."""
    if "_" in value or "-" in value or value.count("/") > 4:
        return False
    digits = digit_count(value)
    return 2 <= digits < len(value) and (value.lower() != value or "/" in value or "+" in value)


def _aws_context(before: str) -> bool:
    """An AWS key id (masked by now), "aws", "iam" or "secret access key" shortly before."""
    return (
        "aws" in before
        or "iam" in before
        or ("access" in before and bool(_AWS_ACCESS.search(before)))
    )


# ----- national ids, IBANs and cards, by their printed layouts ----------------------------------

_SSN_DASHED = re.compile(rf"-{DIGIT}{{2}}-{DIGIT}{{4}}(?![\w-])")
_SSN_SPACED = re.compile(rf"{DIGIT}{DIGIT}{{2}}([ ]?){DIGIT}{{2}}\1{DIGIT}{{4}}(?![\w-])")
_SSN_CONTEXT = re.compile(
    r"(?i)\bssn\b|social[ ]security|\bss#|sozialversicherung|taxpayer|\btin\b"
)
SSN_HINTS = ("ssn", "social security", "ss#", "sozialversicherung", "taxpayer", "tin")


def ssn(text: str) -> Iterator[Span]:
    """123-45-6789 anywhere (the dash is searched for first)."""
    for m in _SSN_DASHED.finditer(text):
        start = m.start() - 3
        if start < 0 or (start and (text[start - 1].isalnum() or text[start - 1] in "-_")):
            continue
        value = text[start : m.end()]
        if mostly_digits(value) and ssn_ok(value):
            yield start, m.end()


def ssn_spaced(text: str) -> Iterator[Span]:
    """123 45 6789 or 123456789 only after a word that says it is one (`SSN_HINTS`)."""
    for m in _SSN_SPACED.finditer(text):
        start = m.start()
        if start and (text[start - 1].isalnum() or text[start - 1] in "-_"):
            continue
        value = m.group(0)
        near = _SSN_CONTEXT.search(text, max(0, start - 60), start)
        if mostly_digits(value) and ssn_ok(value) and near:
            yield m.span()


_IBAN = re.compile(
    rf"[A-Z](?<![A-Za-z0-9][A-Z])[A-Z]{DIGIT}{{2}}(?:[ ]?[A-Z0-9l|]{{4}}){{2,7}}"
    r"(?:[ ]?[A-Z0-9l|]{1,3})?(?![A-Za-z0-9])"
)


_IBAN_OCR = (("O", "0"), ("I", "1"), ("l", "1"), ("|", "1"))


def iban(text: str) -> Iterator[Span]:
    for m in _IBAN.finditer(text):
        if m.start() and text[m.start() - 1].isalnum():
            continue
        if m.group(0)[:2] not in IBAN_LENGTHS:
            continue
        groups = m.group(0).split(" ")
        # The last groups may be the start of the next word or number: try dropping them.
        for cut in range(len(groups), max(len(groups) - 3, 0), -1):
            candidate = " ".join(groups[:cut])
            fixed = candidate[:2] + as_hex(candidate[2:4]) + candidate[4:]
            body = fold(fixed[4:], _IBAN_OCR)
            if any(iban_ok(c) for c in (candidate, fixed, fixed[:4] + body)):
                yield m.start(), m.start() + len(candidate)
                break


_D = DIGIT
#: Printed layouts only (4-4-4-4, 4-4-4-4-3, 4-6-5, 4-6-4, or unbroken), starting with a real
#: issuer digit: a run of page numbers or phone numbers never has this shape.
_CARD = re.compile(  # the look-behind after the first digit: a digit inside a run fails at once
    rf"[2-6](?<![\w-][2-6])(?:{_D}{{3}}([ -]?){_D}{{4}}\1{_D}{{4}}\1{_D}{{4}}(?:\1{_D}{{3}})?"
    rf"|{_D}{{3}}([ -]?){_D}{{6}}\2{_D}{{4,5}}|{_D}{{12,18}})(?![\w-])"
)


def cards(text: str) -> Iterator[Span]:
    for m in _CARD.finditer(text):
        if m.start() and (text[m.start() - 1].isalnum() or text[m.start() - 1] in "-_"):
            continue
        if card_ok(m.group(0)):
            yield m.span()
