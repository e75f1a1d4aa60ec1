"""Skip unchanged frames before OCR, which is where capture's CPU goes.

Each monitor's frame is turned into grayscale and shrunk by `factor` with a box filter (text is
still visible as blocks of grey), then compared with the last frame that was *kept* for that
monitor: a frame counts as changed when more than `min_changed_fraction` of the small pixels
moved by more than `pixel_threshold` grey levels. Comparing with the last kept frame (not the
previous one) means slow typing adds up until it is read. A blinking cursor stays below the bar.
After `force_after_s` without a kept frame, the next one is read anyway (forced re-read), so a
missed change cannot hide for long.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from capture.ports import Frame, Rect

if TYPE_CHECKING:
    from numpy.typing import NDArray


def to_gray(frame: Frame) -> Image.Image:
    """The frame's BGRA pixels as an 8-bit grayscale image (no copy of the raw buffer kept)."""
    rgb = Image.frombuffer("RGB", frame.size, frame.bgra, "raw", "BGRX", 0, 1)
    return rgb.convert("L")


def mask(gray: Image.Image, frame_rect: Rect, hide: list[Rect]) -> Image.Image:
    """A copy of `gray` with each desktop rectangle in `hide` painted over (for OCR)."""
    if not hide:
        return gray
    out = gray.copy()
    for r in hide:
        box = (
            r.left - frame_rect.left,
            r.top - frame_rect.top,
            r.left - frame_rect.left + r.width,
            r.top - frame_rect.top + r.height,
        )
        out.paste(255, box)
    return out


@dataclass(frozen=True)
class ChangeResult:
    changed: bool
    forced: bool
    fraction: float

    @property
    def keep(self) -> bool:
        return self.changed or self.forced


@dataclass
class _Kept:
    thumb: NDArray[np.int16]
    at: float


class ChangeDetector:
    """Per-monitor memory of the last kept frame (a small thumbnail, in memory only)."""

    def __init__(
        self,
        factor: int = 8,
        pixel_threshold: int = 16,
        min_changed_fraction: float = 0.001,
        force_after_s: float = 300.0,
    ) -> None:
        self.factor = factor
        self.pixel_threshold = pixel_threshold
        self.min_changed_fraction = min_changed_fraction
        self.force_after_s = force_after_s
        self._kept: dict[int, _Kept] = {}

    def thumbnail(self, gray: Image.Image) -> NDArray[np.int16]:
        small = gray.reduce(self.factor) if self.factor > 1 else gray
        return np.asarray(small, dtype=np.int16)

    def observe(self, monitor: int, gray: Image.Image, now: float) -> ChangeResult:
        """Compare with the last kept frame of `monitor`; a kept frame becomes the new base."""
        thumb = self.thumbnail(gray)
        kept = self._kept.get(monitor)
        if kept is None or kept.thumb.shape != thumb.shape:
            result = ChangeResult(changed=True, forced=False, fraction=1.0)
        else:
            moved = np.abs(thumb - kept.thumb) > self.pixel_threshold
            fraction = float(moved.mean())
            changed = fraction > self.min_changed_fraction
            forced = not changed and now - kept.at >= self.force_after_s
            result = ChangeResult(changed=changed, forced=forced, fraction=fraction)
        if result.keep:
            self._kept[monitor] = _Kept(thumb, now)
        return result

    def forget(self, monitor: int | None = None) -> None:
        """Drop the base frame (of one monitor, or all): the next frame is read in full."""
        if monitor is None:
            self._kept.clear()
        else:
            self._kept.pop(monitor, None)
