"""The tesseract adapter: the only module that imports pytesseract.

pytesseract finds and versions the binary and names its errors, but its OCR calls write the
image to a temporary file, and a screenshot on disk is exactly what capture promises never to
leave. So the frame goes to tesseract through a pipe (`tesseract stdin stdout`) as an in-memory
PGM, and the text comes back the same way.

`OMP_THREAD_LIMIT=1` is always set for the child: tesseract's OpenMP threads fight over the cores
(measured on this 2-core machine: 2.4 s instead of 17.5 s for a dense 1080p screen). The child
inherits the calling thread's nice value, so OCR runs at capture's lower priority.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import TYPE_CHECKING

from capture.ports import OcrFailed, OcrTimeout, OcrUnavailable

if TYPE_CHECKING:
    from PIL import Image

INSTALL_HINT = (
    "install it with `sudo apt-get install tesseract-ocr` (Debian/Ubuntu), or run `make setup`"
)


class TesseractOcr:
    def __init__(self, cmd: str | None = None, lang: str = "eng", psm: int = 3) -> None:
        self._cmd = cmd
        self._lang = lang
        self._psm = psm

    @property
    def cmd(self) -> str:
        if self._cmd:
            return self._cmd
        import pytesseract

        return str(pytesseract.pytesseract.tesseract_cmd)

    def _env(self) -> dict[str, str]:
        return {**os.environ, "OMP_THREAD_LIMIT": "1"}

    def check(self) -> str:
        """The tesseract version, after checking the binary and the language data exist."""
        import pytesseract

        if shutil.which(self.cmd) is None:
            raise OcrUnavailable(f"tesseract (the OCR engine) was not found; {INSTALL_HINT}")
        previous = pytesseract.pytesseract.tesseract_cmd
        pytesseract.pytesseract.tesseract_cmd = self.cmd
        try:
            version = str(pytesseract.get_tesseract_version())
            langs = set(pytesseract.get_languages(config=""))
        except (pytesseract.TesseractNotFoundError, OSError) as exc:
            raise OcrUnavailable(f"tesseract cannot start ({exc}); {INSTALL_HINT}") from exc
        finally:
            pytesseract.pytesseract.tesseract_cmd = previous
        missing = [lang for lang in self._lang.split("+") if lang not in langs]
        if missing:
            raise OcrUnavailable(
                f"tesseract {version} has no language data for {', '.join(missing)}; install "
                f"tesseract-ocr-{missing[0]} (it has: {', '.join(sorted(langs)) or 'none'})"
            )
        return version

    def read(self, image: Image.Image, timeout_s: float) -> str:
        gray = image if image.mode == "L" else image.convert("L")
        width, height = gray.size
        pgm = b"P5\n%d %d\n255\n" % (width, height) + gray.tobytes()
        args = [self.cmd, "stdin", "stdout", "-l", self._lang, "--psm", str(self._psm)]
        try:
            done = subprocess.run(
                args,
                input=pgm,
                capture_output=True,
                timeout=timeout_s,
                env=self._env(),
                check=False,
            )
        except FileNotFoundError as exc:
            raise OcrUnavailable(
                f"tesseract (the OCR engine) was not found at {self.cmd!r}; {INSTALL_HINT}"
            ) from exc
        except subprocess.TimeoutExpired as exc:  # run() has killed the child already
            raise OcrTimeout(
                f"OCR of a {width}x{height} frame took over {timeout_s:g} s and was stopped"
            ) from exc
        if done.returncode != 0:
            message = done.stderr.decode("utf-8", "replace").strip().splitlines()
            detail = message[-1] if message else f"exit status {done.returncode}"
            if "loading language" in " ".join(message).lower():
                raise OcrUnavailable(f"tesseract has no language data for {self._lang}: {detail}")
            raise OcrFailed(f"tesseract failed on a {width}x{height} frame: {detail}")
        return done.stdout.decode("utf-8", "replace")
