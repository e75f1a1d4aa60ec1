"""One parser for the dates real chat exports write, shared by the benchmark loader and every
importer, so a format learnt once is understood everywhere.

Understood (with or without seconds, with or without a zone or offset):
- ISO 8601: `2023-05-08`, `2023-05-08T13:56:04Z`, `2023-05-08 13:56+02:00`
- day first with dots: `29.12.2023, 22:42:04`, `29.12.23 22:42`
- slashes: `05/08/23, 1:56 PM` (month first, as WhatsApp writes in the US) and, where the first
  number cannot be a month, `29/12/2023 22:42` (day first); `day_first=True` settles `08/05/23`
- words: `8 May 2023`, `May 8, 2023`, `8 May, 2023 13:56`
- LoCoMo's `1:56 pm on 8 May, 2023`
- Unix seconds (`1683554164`, `1683554164.5`), as ChatGPT's export writes them
- iCalendar's basic ISO form: `20240501`, `20240501T090000`, `20240501T090000Z`

A value with no zone is read in `tz` (UTC unless the caller knows better). Anything else is an
`UnknownDateFormat` that names the value.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo

__all__ = ["UnknownDateFormat", "parse_when", "spoken"]


class UnknownDateFormat(ValueError):
    """A date in a format Engram does not read; the message names the value."""

    def __init__(self, value: str, why: str = "") -> None:
        self.value = value
        super().__init__(f"unrecognised date {value!r}" + (f": {why}" if why else ""))


_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}

_TIME = (
    r"(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<frac>\d{1,6}))?)?"
    r"\s*(?P<ampm>[ap]\.?m\.?)?"
)
_ZONE = r"\s*(?P<zone>Z|UTC|GMT|[+-]\d{2}:?\d{2})?"
_SEP = r"(?:\s*,\s*|\s+|T)"
_TAIL = rf"(?:{_SEP}{_TIME})?{_ZONE}$"  # an optional time of day, then an optional zone
_YEAR = r"(?P<y>\d{2}|\d{4})"
_DAY = r"(?P<d>\d{1,2})(?:st|nd|rd|th)?"


def _pattern(date: str) -> re.Pattern[str]:
    return re.compile(date + _TAIL, re.I)


_ISO = _pattern(r"(?P<y>\d{4})-(?P<mo>\d{1,2})-(?P<d>\d{1,2})")
_DOTS = _pattern(rf"(?P<d>\d{{1,2}})\.(?P<mo>\d{{1,2}})\.{_YEAR}")
_SLASH = _pattern(rf"(?P<a>\d{{1,2}})/(?P<b>\d{{1,2}})/{_YEAR}")
_DAY_MONTH = _pattern(rf"{_DAY}\s+(?P<mon>[a-z]+)\.?,?\s+(?P<y>\d{{4}})")
_MONTH_DAY = _pattern(rf"(?P<mon>[a-z]+)\.?\s+{_DAY},?\s+(?P<y>\d{{4}})")
_TIME_ON = re.compile(rf"{_TIME}\s+on\s+(?P<rest>.+)$", re.I)
_EPOCH = re.compile(r"\d{9,11}(?:\.\d+)?$")
_BASIC = re.compile(
    r"(?P<y>\d{4})(?P<mo>\d{2})(?P<d>\d{2})(?:T(?P<h>\d{2})(?P<mi>\d{2})(?P<s>\d{2})?)?"
    r"(?P<zone>Z)?$"
)


def parse_when(text: str, *, tz: tzinfo = UTC, day_first: bool = False) -> datetime:
    """`text` as an aware datetime; raises `UnknownDateFormat` naming the value."""
    value = " ".join(str(text).split())
    if not value:
        raise UnknownDateFormat(text, "it is empty")
    if _EPOCH.match(value):
        return datetime.fromtimestamp(float(value), tz=UTC)
    on = _TIME_ON.match(value)
    if on:  # LoCoMo: the time first, then "on" and the date
        date = parse_when(on["rest"], tz=tz, day_first=day_first)
        return _at(date, on.groupdict(), value)
    for pattern in (_ISO, _BASIC, _DOTS, _DAY_MONTH, _MONTH_DAY):
        m = pattern.match(value)
        if m:
            g = m.groupdict()
            month = _month(g, value)
            return _build(value, int(g["y"]), month, int(g["d"]), g, tz)
    m = _SLASH.match(value)
    if m:
        g = m.groupdict()
        a, b = int(g["a"]), int(g["b"])
        if a > 12 or (day_first and b <= 12):
            day, month = a, b
        else:
            month, day = a, b
        return _build(value, int(g["y"]), month, day, g, tz)
    raise UnknownDateFormat(text)


def _month(g: dict[str, str | None], value: str) -> int:
    if g.get("mo"):
        return int(g["mo"] or 0)
    name = (g.get("mon") or "").lower()
    if name not in _MONTHS:
        raise UnknownDateFormat(value, f"{g.get('mon')!r} is not a month")
    return _MONTHS[name]


def _build(
    value: str, year: int, month: int, day: int, g: dict[str, str | None], tz: tzinfo
) -> datetime:
    if year < 100:
        year += 2000 if year < 70 else 1900
    try:
        base = datetime(year, month, day, tzinfo=_zone(g.get("zone"), tz, value))
    except ValueError as exc:
        raise UnknownDateFormat(value, str(exc)) from exc
    return _at(base, g, value) if g.get("h") else base


def _at(day: datetime, g: dict[str, str | None], value: str) -> datetime:
    hour, minute = int(g["h"] or 0), int(g["mi"] or 0)
    ampm = (g.get("ampm") or "").replace(".", "").lower()
    if ampm:
        if not 1 <= hour <= 12:
            raise UnknownDateFormat(value, f"{hour} is not an hour on a 12-hour clock")
        hour = hour % 12 + (12 if ampm == "pm" else 0)
    second = int(g.get("s") or 0)
    micro = int((g.get("frac") or "0").ljust(6, "0")[:6])
    try:
        return day.replace(hour=hour, minute=minute, second=second, microsecond=micro)
    except ValueError as exc:
        raise UnknownDateFormat(value, str(exc)) from exc


def _zone(zone: str | None, default: tzinfo, value: str) -> tzinfo:
    if not zone:
        return default
    if zone.upper() in {"Z", "UTC", "GMT"}:
        return UTC
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:])
    if hours > 14 or minutes > 59:
        raise UnknownDateFormat(value, f"{zone} is not a time-zone offset")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def spoken(when: datetime) -> str:
    """`when` as a person writes it, in local time: "8 May 2023, 13:56". The chat prompt shows
    dates this way so a model copies them in the form people (and LoCoMo's gold answers) use,
    not as "2023-05-08"."""
    local = when.astimezone()
    return f"{local.day} {local:%B %Y, %H:%M}"
