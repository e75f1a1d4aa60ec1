"""What a secret looks like, as pure checks: checksums (Luhn, IBAN mod 97, US SSN ranges), the
OCR character swaps a screen read makes, and whether a labelled value is a secret or prose,
code or a placeholder ("Password: must be at least 8 characters", `os.environ['API_KEY']`).

The redactor (capture/redact.py) finds candidates by shape; these decide. No engine here, so
each check is cheap and testable on its own.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from itertools import accumulate

_MASK = "[REDACTED:{kind}]"
MASKED = re.compile(r"\[REDACTED:[a-z_]+\]")


@functools.cache  # one string per kind, not one per secret
def mask(kind: str) -> str:
    """What replaces a secret of `kind`: the one definition every caller shows and tests."""
    return _MASK.format(kind=kind)


def is_masked(value: str) -> bool:
    return value.lstrip("\"'`").startswith("[REDACTED:")


#: Where a secret is, and (for a rule that finds several kinds) which kind it is.
Span = tuple[int, int]
Hit = tuple[int, int] | tuple[int, int, str]
Finder = Callable[[str], Iterator[Hit]]


def lower(text: str) -> str:
    """`text` lower-cased at the same length, so a match in it is a span of `text`: str.lower
    makes two characters of "İ" alone, so it is folded first. (A `str.translate` table keeps
    the length too, but goes character by character through a dict once any character is not
    ASCII: 20 ms and more for 100,000, on every call.)"""
    low = text.lower()
    return low if len(low) == len(text) else text.replace("İ", "i").lower()


#: Characters tesseract reads for a digit ("0" as "O", "1" as "l"), folded back before a checksum.
_TO_DIGIT = (("O", "0"), ("o", "0"), ("D", "0"), ("l", "1"), ("I", "1"), ("|", "1"), ("i", "1"))
#: The same swaps for hex: "7a1f" read as "7alf", "0" as "O".
_TO_HEX = _TO_DIGIT[:2] + _TO_DIGIT[3:]
#: A regex class for one digit as OCR may read it.
DIGIT = "[0-9OolI|]"
#: A regex class for one hex character as OCR may read it.
HEX = "[0-9a-fA-FOolI|]"

_OCR_ALIASES = {
    "i": "iI1l|", "I": "Il1|", "l": "lI1|", "1": "1lI|", "o": "o0O", "O": "O0o", "0": "0Oo",
    "s": "s5", "S": "S5", "5": "5S", "B": "B8", "8": "8B",
}  # fmt: skip


def ocr_literal(text: str) -> str:
    """A regex for `text` as OCR may read it (each confusable character as a class)."""
    out = []
    for ch in text:
        alias = _OCR_ALIASES.get(ch)
        out.append(f"[{re.escape(alias)}]" if alias else re.escape(ch))
    return "".join(out)


def fold(text: str, swaps: tuple[tuple[str, str], ...]) -> str:
    """`text` with each swap made: a few `replace` calls, which on a short candidate cost a
    fraction of `str.translate`'s set-up."""
    for old, new in swaps:
        if old in text:
            text = text.replace(old, new)
    return text


def as_digits(text: str) -> str:
    """The digits of `text` with OCR swaps folded back; other characters dropped."""
    return "".join(filter(str.isdecimal, fold(text, _TO_DIGIT)))


def as_hex(text: str) -> str:
    return fold(text, _TO_HEX)


def digit_count(value: str) -> int:
    """How many ASCII digits `value` holds, at C speed: the bytes a translate deletes (a digit
    is one byte in UTF-8 and never inside another character's bytes)."""
    raw = value.encode("utf-8", "surrogatepass")
    return len(raw) - len(raw.translate(None, b"0123456789"))


def mostly_digits(text: str, share: float = 0.6) -> bool:
    """True when at least `share` of the characters that stand for digits really are digits:
    an OCR swap or two is tolerated, a word is not."""
    chars = [c for c in text if not c.isspace() and c != "-"]
    if not chars or any(not c.isdigit() and c not in "OolI|iD" for c in chars):
        return False
    return sum(c.isdigit() for c in chars) >= share * len(chars)


_DOUBLED = {str(d): (d * 2 - 9 if d > 4 else d * 2) for d in range(10)}


def luhn_ok(digits: str) -> bool:
    total = sum(map(int, digits[-1::-2])) + sum(map(_DOUBLED.__getitem__, digits[-2::-2]))
    return total % 10 == 0


def card_ok(match: str) -> bool:
    """A payment card number: 13-19 digits from an issuer range, passing Luhn."""
    digits = match.replace(" ", "").replace("-", "")
    if not digits.isdigit():  # an OCR swap or two ("111l"), not a word
        if not mostly_digits(match):
            return False
        digits = as_digits(match)
    if not 13 <= len(digits) <= 19 or not luhn_ok(digits):
        return False
    # Issuer prefixes in use start with 2-6 (Mastercard 2221-2720, Amex/Diners/JCB 3, Visa 4,
    # Mastercard 5, Discover/UnionPay 6); a long number starting with 0, 1, 7, 8 or 9 is not one.
    if digits[0] == "2":
        return 2221 <= int(digits[:4]) <= 2720
    return digits[0] in "3456"


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
    if IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban.isalnum() or not iban.isascii():
        return False
    moved = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def ssn_ok(match: str) -> bool:
    """A US social security number in a range the SSA issues (no 000, 666, 9xx area; no 00
    group; no 0000 serial)."""
    digits = as_digits(match)
    if len(digits) != 9:
        return False
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


# ----- labelled values: a secret, or prose / code / a placeholder? ------------------------------

#: Words that start the prose after a label rather than a value ("Password: must be at least…").
PROSE = frozenset(
    """a an the and or of to in on at by for from with without is are was be been being
    must should shall will would can cannot could may might need needs needed has have had do
    does not no none never see refer check use used using enter type choose pick create set
    reset change changed update updated forgot forgotten show hide hidden required optional
    invalid incorrect wrong expired expires expiry strength weak strong medium good fair poor
    policy policies rules rule requirements requirement length minimum maximum min max
    characters character chars letters digits symbols at least most contains contain include
    includes including protected manager managers saved stored sent here there below above
    this that these those your you my our their his her its it same match matches matching
    confirm confirmation field fields input prompt hint label value unknown empty blank n/a na
    tbd todo placeholder example sample dummy test click tap press copy copied generate
    generated rotate rotated revoke revoked please only also just like e.g. i.e. etc which
    when where what who how if then than as via per into onto all any each every some
    missing mismatch didn't doesn't isn't don't can't won't ist wird muss est doit""".split()
)
#: Values that stand for a secret without being one.
_PLACEHOLDER = re.compile(
    r"""(?ix)^(?:
        <[^>]*>? | \{\{?[^}]*\}?\}? | \$\{?[A-Za-z_][\w]*\}? | %\(?\w*\)?s? | \[[^\]]*\]?
      | [*•·●∙x#?.…_-]{2,} | none | null | nil | undefined | true | false | n/?a | tbd | todo
      | password | passwd | pass | pwd | secret | token | your[_-]?\w* | my[_-]?\w*
      | example\w* | dummy\w* | redacted\w* | hidden | masked
      | ["']{2}
    )$""",
)
#: Code that computes the value instead of holding it: calls, lookups, attribute paths, env.
_CODE = re.compile(
    r"""(?x)^(?:
        [A-Za-z_][\w]*(?:\s*\.\s*[A-Za-z_][\w]*)*\s*[(\[]       # getpass.getpass(), os.environ[
      | (?:os|process|self|this|cls|config|settings|env|ENV|request|args|opts|options|params
          |secrets|vault|keyring|credentials|creds|cfg|conf|app|context|ctx)\.\S*
      | [A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+[;,)]?                   # settings.SECRET_KEY
      | (?:lambda|function|await|new|input|prompt|read|get)\b
      | (?:str|int|bytes|bool|float|string|String|number|SecretStr|Optional|Any|char)\b
        \s*(?:[),=\]|\[]|->|$)                               # a type: def f(password: str)
    )""",
)


def bare(value: str) -> str:
    """`value` without the quotes, brackets and trailing punctuation around it."""
    value = value.strip()
    if len(value) >= 2 and value[0] in "\"'`" and value[-1] == value[0]:
        value = value[1:-1]
    return value.strip().rstrip(",;").strip("\"'`")


def is_placeholder(value: str) -> bool:
    value = bare(value)
    return not value or not any(map(str.isalnum, value)) or bool(_PLACEHOLDER.match(value))


#: The placeholders `_PLACEHOLDER` knows that letters and digits alone can spell.
_NAMED_PLACEHOLDERS = ("your", "my", "example", "dummy", "redacted")


def plain_token(value: str) -> bool:
    """ASCII letters and digits, both of them, not spelling a placeholder ("your_key1" has an
    underscore; "example1" is one): such a value is no placeholder, no code and no prose (those
    need punctuation, a space, or a word alone), decided without their regexes."""
    return (
        value.isascii()
        and value.isalnum()
        and not value.isalpha()
        and not value.isdigit()
        and not value.lower().startswith(_NAMED_PLACEHOLDERS)
    )


def is_code(value: str) -> bool:
    return bool(_CODE.match(value.strip().lstrip("\"'`")))


def first_word(value: str) -> str:
    head = value.strip().split(maxsplit=1)
    return head[0].strip("\"'`.,;:!()[]").casefold() if head else ""


def is_prose(value: str) -> bool:
    """The words after a label read as a sentence, not a value."""
    word = first_word(value)
    if word in PROSE:
        return True
    words = value.split()
    # Three or more plain lowercase words: a sentence ("Secret: santa party friday night").
    return len(words) >= 3 and all(w.isalpha() and w.islower() for w in words[:3])


def password_shaped(value: str, min_len: int = 6) -> bool:
    """A value that reads as a password even without a colon before it ("Password Qw7!x…"):
    not a word of a sentence, with a digit or a symbol, or mixed case inside the word."""
    value = bare(value)
    if len(value) < min_len or " " in value or is_placeholder(value) or is_code(value):
        return False
    if value[0] in "([{<" or value.rstrip(".,;:!?)").isalpha():
        return False  # "(8+ characters)", "Password strength: strong", "Password reset."
    has_digit = any(c.isdigit() for c in value)
    has_symbol = any(not c.isalnum() for c in value)
    inner_upper = any(c.isupper() for c in value[1:]) and any(c.islower() for c in value)
    if value.isalpha() and not inner_upper:
        return False
    return has_digit or has_symbol or inner_upper


def token_shaped(value: str, min_len: int = 6) -> bool:
    """A key or token: one unbroken string with letters and digits (or long and varied), not a
    word, code or a placeholder ("token: see the API docs" is not one)."""
    value = bare(value)  # C-speed tests below: a page of labels calls this thousands of times
    if len(value) < min_len or len(value.split(maxsplit=1)) > 1:
        return False
    if value[0] in "([{<" or is_placeholder(value) or is_code(value):
        return False
    if any(map(str.isalpha, value)) and any(map(str.isdigit, value)):
        return True
    return len(value) >= 16 and len(set(value)) >= 10


def starts(lowered: str, roots: tuple[str, ...], back: int = 0) -> list[int]:
    """Where any of `roots` occurs, `back` characters earlier: a pattern is then tried only
    there, not at every position. Each root's places come from one `split` and the running
    sum of the pieces' lengths, at C speed, so a page with a label every few words costs no
    Python loop per occurrence. (No root overlaps itself, so split's non-overlapping
    occurrences are all of them.)"""
    found: list[int] = []
    for root in roots:
        pieces = lowered.split(root)
        if len(pieces) > 1:
            width = len(root)
            ends = accumulate(map(width.__add__, map(len, pieces[:-1])))
            found.extend(map((-width - back).__add__, ends))
    found.sort()
    if back and found and found[0] < 0:
        found = [max(0, at) for at in found]
    return found
