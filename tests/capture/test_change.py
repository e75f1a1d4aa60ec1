"""Unchanged-frame detection and masking, on synthetic frames."""

from __future__ import annotations

from PIL import Image, ImageDraw

from capture.change import ChangeDetector, mask, to_gray
from capture.ports import Frame, Rect


def _page(lines: int, cursor: bool = False, typed: str = "") -> Image.Image:
    image = Image.new("L", (1280, 800), 255)
    draw = ImageDraw.Draw(image)
    for n in range(lines):
        draw.text(
            (20, 20 + 18 * n), f"line {n}: the quick brown fox jumps over the lazy dog", fill=0
        )
    draw.text((20, 20 + 18 * lines), typed, fill=0)
    if cursor:
        draw.rectangle((400, 20, 401, 36), fill=0)  # a blinking text cursor
    return image


def test_a_blinking_cursor_is_not_a_change_but_a_new_line_is() -> None:
    detector = ChangeDetector(force_after_s=300)
    assert detector.observe(1, _page(10), now=0).changed  # first sight
    assert not detector.observe(1, _page(10, cursor=True), now=3).keep
    assert detector.observe(1, _page(14), now=6).changed


def test_slow_typing_adds_up_against_the_last_kept_frame() -> None:
    detector = ChangeDetector()
    detector.observe(1, _page(10), now=0)
    word = "remember to water the plants on friday"
    kept = [detector.observe(1, _page(10, typed=word[:n]), now=n).changed for n in range(2, 40, 2)]
    assert kept[0] is False  # two characters are not worth an OCR run
    assert any(kept)  # but a sentence is, though no single step changed much


def test_forced_reread_after_the_configured_time() -> None:
    detector = ChangeDetector(force_after_s=60)
    detector.observe(1, _page(5), now=0)
    assert not detector.observe(1, _page(5), now=59).keep
    result = detector.observe(1, _page(5), now=60)
    assert result.forced and not result.changed
    assert not detector.observe(1, _page(5), now=61).keep  # the clock restarts


def test_monitors_are_compared_separately_and_forget_resets() -> None:
    detector = ChangeDetector()
    detector.observe(1, _page(5), now=0)
    assert detector.observe(2, _page(5), now=0).changed  # a different monitor's first frame
    detector.forget(1)
    assert detector.observe(1, _page(5), now=1).changed


def test_to_gray_reads_bgra_and_mask_paints_over_desktop_rectangles() -> None:
    red, blue = bytes((0, 0, 255, 255)), bytes((255, 0, 0, 255))
    frame = Frame(2, Rect(100, 0, 4, 2), red * 4 + blue * 4)
    gray = to_gray(frame)
    assert gray.size == (4, 2)
    assert gray.getpixel((0, 0)) == 76 and gray.getpixel((0, 1)) == 29  # ITU-R 601 luma
    # A window from x=98 to 102 on the desktop covers the first two columns of monitor 2.
    hidden = mask(gray, frame.rect, [Rect(98, 0, 4, 10)])
    assert [hidden.getpixel((x, 0)) for x in range(4)] == [255, 255, 76, 76]
    assert gray.getpixel((0, 0)) == 76  # the original is untouched
