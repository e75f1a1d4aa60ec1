"""The one date parser: every format real exports write, and a clear error for the rest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from storage.dates import UnknownDateFormat, parse_when

PLUS2 = timezone(timedelta(hours=2))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-05-08", datetime(2023, 5, 8, tzinfo=UTC)),
        ("2023-05-08T13:56:04Z", datetime(2023, 5, 8, 13, 56, 4, tzinfo=UTC)),
        ("2023-05-08 13:56+02:00", datetime(2023, 5, 8, 13, 56, tzinfo=PLUS2)),
        ("2023-05-08T13:56:04.25+0200", datetime(2023, 5, 8, 13, 56, 4, 250000, tzinfo=PLUS2)),
        ("29.12.2023, 22:42:04", datetime(2023, 12, 29, 22, 42, 4, tzinfo=UTC)),
        ("29.12.23 22:42", datetime(2023, 12, 29, 22, 42, tzinfo=UTC)),
        ("05/08/23, 1:56 PM", datetime(2023, 5, 8, 13, 56, tzinfo=UTC)),
        ("29/12/2023 22:42", datetime(2023, 12, 29, 22, 42, tzinfo=UTC)),
        ("12/1/2026, 12:05 am", datetime(2026, 12, 1, 0, 5, tzinfo=UTC)),
        ("8 May 2023", datetime(2023, 5, 8, tzinfo=UTC)),
        ("May 8, 2023", datetime(2023, 5, 8, tzinfo=UTC)),
        ("8th Sept 2023 07:30", datetime(2023, 9, 8, 7, 30, tzinfo=UTC)),
        ("8 May, 2023 13:56", datetime(2023, 5, 8, 13, 56, tzinfo=UTC)),
        ("1:56 pm on 8 May, 2023", datetime(2023, 5, 8, 13, 56, tzinfo=UTC)),
        ("10:04 am on 19 January, 2024", datetime(2024, 1, 19, 10, 4, tzinfo=UTC)),
        ("12:30 p.m. on 1 June, 2023", datetime(2023, 6, 1, 12, 30, tzinfo=UTC)),
        ("1683554164", datetime(2023, 5, 8, 13, 56, 4, tzinfo=UTC)),
        ("1683554164.5", datetime(2023, 5, 8, 13, 56, 4, 500000, tzinfo=UTC)),
        ("20240501", datetime(2024, 5, 1, tzinfo=UTC)),
        ("20240501T090000Z", datetime(2024, 5, 1, 9, 0, tzinfo=UTC)),
        ("20240501T0930", datetime(2024, 5, 1, 9, 30, tzinfo=UTC)),
    ],
)
def test_formats_real_exports_write(text: str, expected: datetime) -> None:
    got = parse_when(text)
    assert got == expected
    assert got.utcoffset() == expected.utcoffset()


def test_day_first_settles_a_slash_date_and_a_zone_is_used_when_none_is_written() -> None:
    assert parse_when("08/05/23 09:00", day_first=True) == datetime(2023, 5, 8, 9, tzinfo=UTC)
    assert parse_when("08/05/23 09:00") == datetime(2023, 8, 5, 9, tzinfo=UTC)
    assert parse_when("2023-05-08 09:00", tz=PLUS2).utcoffset() == timedelta(hours=2)
    assert parse_when("2023-05-08 09:00Z", tz=PLUS2).utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "yesterday",
        "31.02.2023",
        "13:99 on 8 May, 2023",
        "8 Mai 2023",
        "2023-13-01",
        "25:00 pm on 8 May, 2023",
    ],
)
def test_an_unknown_or_impossible_date_is_a_clear_error_naming_the_value(text: str) -> None:
    with pytest.raises(UnknownDateFormat) as caught:
        parse_when(text)
    assert repr(text) in str(caught.value)


def test_spoken_dates_read_as_people_write_them() -> None:
    import os
    import time

    from storage.dates import spoken

    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"  # spoken() writes local time
    time.tzset()
    try:
        assert spoken(datetime(2023, 5, 8, 13, 56, tzinfo=UTC)) == "8 May 2023, 13:56"
        at = parse_when("12:09 am on 13 September, 2023")
        assert spoken(at) == "13 September 2023, 00:09"
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()
