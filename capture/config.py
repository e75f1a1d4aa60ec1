"""Capture settings: one frozen pydantic model, nested in `app.settings.Settings.capture`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from capture.privacy import (
    DEFAULT_EXCLUDED_APPS,
    DEFAULT_EXCLUDED_TITLES,
    Exclusions,
    compile_patterns,
)


class CaptureSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    #: Seconds between two looks at the screen.
    interval_s: float = Field(default=3.0, ge=0.1, le=3600)
    #: Monitors to capture, counted from 1; empty means all of them.
    monitors: tuple[int, ...] = ()
    #: Re-read a screen that looks unchanged after this many seconds anyway.
    force_reread_s: float = Field(default=300.0, ge=1, le=86_400)
    #: Share of (downscaled) pixels that must change for a frame to be read again.
    min_changed_fraction: float = Field(default=0.001, ge=0, lt=1)
    #: Frames waiting for OCR at most; over it a frame is skipped with a `backlog` gap.
    backlog_frames: int = Field(default=4, ge=1, le=100)
    #: Events waiting for the agents at most; over it capture skips with a `backlog` gap.
    max_pending_events: int = Field(default=50_000, ge=10, le=10_000_000)
    #: Seconds one frame's OCR may take before it is stopped.
    ocr_timeout_s: float = Field(default=30.0, ge=0.1, le=600)
    #: Tesseract language(s), e.g. "eng" or "eng+deu".
    ocr_language: str = Field(default="eng", pattern=r"^[A-Za-z_]+(\+[A-Za-z_]+)*$")
    #: How much lower the capture threads run (added to the nice value, 0-19).
    nice: int = Field(default=10, ge=0, le=19)
    excluded_apps: tuple[str, ...] = DEFAULT_EXCLUDED_APPS
    excluded_title_patterns: tuple[str, ...] = DEFAULT_EXCLUDED_TITLES

    @field_validator("monitors")
    @classmethod
    def _monitors(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(m < 1 for m in value):
            raise ValueError("monitors are counted from 1 (0 would mean all of them: leave empty)")
        return tuple(dict.fromkeys(value))

    @field_validator("excluded_title_patterns")
    @classmethod
    def _patterns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        compile_patterns(value)
        return value

    @model_validator(mode="after")
    def _reread_after_interval(self) -> CaptureSettings:
        if self.force_reread_s < self.interval_s:
            raise ValueError(
                f"force_reread_s ({self.force_reread_s:g}) must not be shorter than "
                f"interval_s ({self.interval_s:g})"
            )
        return self

    def exclusions(self) -> Exclusions:
        return Exclusions(self.excluded_apps, self.excluded_title_patterns)
