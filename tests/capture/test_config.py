"""Capture settings validation: a bad value is refused with a reason a person understands."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from capture.config import CaptureSettings


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"interval_s": 0}, "greater than or equal to 0.1"),
        ({"monitors": [0]}, "counted from 1"),
        ({"excluded_title_patterns": ["(unclosed"]}, "not valid"),
        ({"interval_s": 60, "force_reread_s": 30}, "must not be shorter"),
        ({"backlog_frames": 0}, "greater than or equal to 1"),
        ({"ocr_language": "eng; rm -rf /"}, "should match pattern"),
    ],
)
def test_bad_capture_settings_are_refused_with_a_reason(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        CaptureSettings.model_validate(changes)
