"""Screen capture: screen -> skip unchanged -> OCR -> redact -> durable event queue.

Kept import-light: the engines (mss, python-xlib, tesseract) load only inside their adapters.
The app's entry point is `capture.service.build_service(store)` -> `CaptureService`.
"""
