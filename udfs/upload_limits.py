"""The upload records' field contracts (fyp.uploads.v1), built from the limits in udfs/limits.py.

Two kinds of consumer ask, and act differently on a broken record:
- the transcoder and moderator workers, before they handle a record addressed to them: a broken one becomes a
  dead letter on fyp.uploads.dlq.v1 (workers/dead_letters.py);
- the orchestration job (udfs/upload_lifecycle.py): a broken UploadCompleted fails its video with
  `invalid_upload:<field>`; any other broken record is ignored and counted (`invalid_record:<reason>`).

Reasons use the engagement side's words (udfs/limits.field_error): `missing_id:<field>`, `too_long:<field>`,
`bad_id:<field>`, `too_many:hashtags`, plus `invalid:<field>` for a value outside its format (a sha256 that is not
64 hex digits, a content type we do not accept).

Ids become key parts: Redis (`fyp:video:v1:{video_id}`, `upload:{upload_id}`) and S3 (`videos/{video_id}/...`).
So every id is at most MAX_ID_BYTES of UTF-8 with no `:` and no control character (`invalid_id_reason`, the
engagement rule), and the ids the upload API issues or accepts (video_id everywhere; author_id and upload_id on
UploadCompleted) are also plain identifiers, `[A-Za-z0-9_-]`, as fyp/media/keys.py requires of S3 key parts.

Every check costs at most its limit (lengths first; a regular expression only ever sees a string already within
its limit, and none of them can backtrack), whatever a producer sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from udfs.limits import (
    MAX_CAPTION_CHARS,
    MAX_HASHTAG_BYTES,
    MAX_HASHTAGS,
    MAX_ID_BYTES,
    MAX_OCR_TEXT_CHARS,
    TEXT_LIMITS,
    UPLOAD_CONTENT_TYPES,
    invalid_id_reason,
)

__all__ = [
    "COMMON_ID_FIELDS",
    "PLAIN_ID_FIELDS",
    "REQUIRED_ID_FIELDS",
    "UPLOAD_COMPLETED_ID_FIELDS",
    "id_error",
    "upload_record_error",
    "utf8_exceeds",
]

COMMON_ID_FIELDS: tuple[str, ...] = ("video_id", "author_id", "event_id")  # on every upload record
# UploadCompleted's, in the order they are checked (video_id, author_id, upload_id first: the order the
# orchestration always checked them in, so `invalid_upload:<field>` names the same field as before).
UPLOAD_COMPLETED_ID_FIELDS: tuple[str, ...] = ("video_id", "author_id", "upload_id", "event_id", "sound_id")
REQUIRED_ID_FIELDS = frozenset({"event_id", "video_id"})  # empty: `missing_id` (as on the engagement side)
# Plain identifiers ([A-Za-z0-9_-]) per record; None: on every record.
PLAIN_ID_FIELDS: Mapping[str | None, frozenset[str]] = {
    None: frozenset({"video_id"}),
    "UploadCompleted": frozenset({"video_id", "author_id", "upload_id"}),
}

_PLAIN = re.compile(r"[A-Za-z0-9_-]+")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_UPLOAD_KEY = re.compile(r"uploads/\d{4}/\d{2}/\d{2}/[0-9a-f]{32}")  # fyp.media.keys.new_upload_key
_REGION = re.compile(r"[A-Z]{2}")  # ISO 3166-1 alpha-2, as the upload API asks
_LANGUAGE = re.compile(r"[a-z]{2}")  # ISO 639-1
_UPLOAD_KEY_CHARS = len("uploads/2026/11/24/") + 32


def utf8_exceeds(value: str, limit: int) -> bool:
    """Whether `value` is over `limit` bytes of UTF-8; costs at most `limit` characters' worth of work.

    >>> utf8_exceeds("a" * 100, 100), utf8_exceeds("é" * 51, 100), utf8_exceeds("x" * 10**6, 100)
    (False, True, True)
    """
    if len(value) > limit:  # a character is at least one byte
        return True
    if len(value) * 4 <= limit:  # and at most four
        return False
    return len(value.encode("utf-8", "surrogatepass")) > limit


def id_error(name: str, value: Any, *, required: bool = False, plain: bool = False) -> str | None:
    """Why `value` cannot be the id `name`, or None.

    required: empty or absent is `missing_id:<name>` (else allowed). plain: only `[A-Za-z0-9_-]` (S3 key parts).

    >>> id_error("video_id", "", required=True), id_error("author_id", "a:b"), id_error("sound_id", None)
    ('missing_id:video_id', 'bad_id:author_id', None)
    >>> id_error("video_id", "x" * 129), id_error("video_id", "a b", plain=True)
    ('too_long:video_id', 'bad_id:video_id')
    """
    if value is None or value == "":
        return f"missing_id:{name}" if required else None
    if not isinstance(value, str):
        return f"bad_id:{name}"
    if utf8_exceeds(value, MAX_ID_BYTES):
        return f"too_long:{name}"
    if invalid_id_reason(value) or (plain and not _PLAIN.fullmatch(value)):
        return f"bad_id:{name}"
    return None


def upload_record_error(record_name: str, record: Mapping[str, Any]) -> str | None:
    """The first broken contract of a decoded upload-topic record, as a reason, or None.

    Every record: its ids (`COMMON_ID_FIELDS`). UploadCompleted also: `upload_id` and `sound_id`, the object key
    the API chose, sha256 (64 lower-case hex digits), region and language (two letters), the content type
    (`UPLOAD_CONTENT_TYPES`), size_bytes (> 0), the caption (MAX_CAPTION_CHARS characters) and the hashtags
    (MAX_HASHTAGS, each MAX_HASHTAG_BYTES bytes, no `:` or control character). ModerationResult also: ocr_text
    (MAX_OCR_TEXT_CHARS characters).

    >>> upload_record_error("TranscodeRequested", {"event_id": "e1", "video_id": "v:1", "author_id": "a1"})
    'bad_id:video_id'
    >>> upload_record_error("ModerationResult", {"event_id": "e1", "video_id": "v1", "ocr_text": "x" * 2_001})
    'too_long:ocr_text'
    """
    completed = record_name == "UploadCompleted"
    plain = PLAIN_ID_FIELDS[record_name if completed else None]
    for name in UPLOAD_COMPLETED_ID_FIELDS if completed else COMMON_ID_FIELDS:
        error = id_error(name, record.get(name), required=name in REQUIRED_ID_FIELDS or (completed and name in plain),
                         plain=name in plain)
        if error:
            return error
    if completed:
        return _upload_completed_error(record)
    if record_name == "ModerationResult":
        text = record.get("ocr_text")
        if text is not None and (not isinstance(text, str) or len(text) > MAX_OCR_TEXT_CHARS):
            return "too_long:ocr_text"
    return None


def _upload_completed_error(record: Mapping[str, Any]) -> str | None:
    """UploadCompleted's fields after its ids, in the orchestration's order (object key, sha256, region, language,
    size), then the ones it did not check before (content type, caption, hashtags)."""
    formats = (("object_key", _UPLOAD_KEY, _UPLOAD_KEY_CHARS), ("sha256", _SHA256, 64),
               ("region", _REGION, TEXT_LIMITS["region"]), ("language", _LANGUAGE, TEXT_LIMITS["language"]))
    for name, pattern, longest in formats:
        value = record.get(name)
        # The length first, so the pattern never reads more than `longest` characters.
        if not isinstance(value, str) or len(value) > longest or not pattern.fullmatch(value):
            return f"invalid:{name}"
    size = record.get("size_bytes")
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        return "invalid:size_bytes"
    if record.get("content_type") not in UPLOAD_CONTENT_TYPES:
        return "invalid:content_type"
    caption = record.get("caption")
    if caption is not None and not isinstance(caption, str):
        return "invalid:caption"
    if caption is not None and len(caption) > MAX_CAPTION_CHARS:
        return "too_long:caption"
    hashtags = record.get("hashtags")
    if hashtags is None:
        return None
    if not isinstance(hashtags, list | tuple):
        return "invalid:hashtags"
    if len(hashtags) > MAX_HASHTAGS:
        return "too_many:hashtags"
    for tag in hashtags:
        if not isinstance(tag, str) or not tag:  # the upload API asks for 1..MAX_HASHTAG_BYTES bytes too
            return "invalid:hashtags"
        if utf8_exceeds(tag, MAX_HASHTAG_BYTES):
            return "too_long:hashtags"
        if invalid_id_reason(tag):
            return "bad_id:hashtags"
    return None
