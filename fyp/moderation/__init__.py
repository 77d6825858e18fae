"""Upload moderation: frame sampling, NSFW scoring, on-screen text, near-duplicates, and the verdict.

Modules, each with one job: `frames` (ffmpeg sampling), `nsfw` (open_nsfw on onnxruntime), `ocr` (Tesseract
and the blocked-terms list), `phash` (PDQ signatures and their index), `verdict` (pure policy). Import from
the modules themselves: this package imports nothing, so `verdict` stays usable without numpy or models.
"""

__all__: list[str] = []
