"""Object keys: made by the server, checked before use. A client never names a key.

Keys are joined into S3 paths and local file paths (the worker downloads `source_key` into a temp dir), so a
key must not be able to climb out of its prefix: no `..` segment, no leading `/`, no backslash, no control
characters; only `[A-Za-z0-9._/-]`, no empty segment, at most 512 characters.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

__all__ = [
    "MAX_KEY_LENGTH",
    "InvalidKey",
    "new_upload_key",
    "upload_key_id",
    "validate_key",
    "video_prefix",
    "video_root",
]

MAX_KEY_LENGTH = 512
_ALLOWED = re.compile(r"[A-Za-z0-9._/-]+")
_UPLOAD_KEY = re.compile(r"uploads/\d{4}/\d{2}/\d{2}/([0-9a-f]{32})")
_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


class InvalidKey(ValueError):
    """A key that could escape its prefix or that we would never have generated."""


def validate_key(key: str, *, prefix: str | None = None) -> str:
    """Return `key` unchanged if it is safe (and starts with `prefix`, when given); raise `InvalidKey` if not.

    >>> validate_key("uploads/2026/11/24/0f8fad5bd9cb469fa16570867728950e")
    'uploads/2026/11/24/0f8fad5bd9cb469fa16570867728950e'
    """
    if not key:
        raise InvalidKey("empty key")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKey(f"key longer than {MAX_KEY_LENGTH} characters")
    if key.startswith("/"):
        raise InvalidKey("key starts with '/'")
    if "\\" in key:
        raise InvalidKey("key contains a backslash")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in key):
        raise InvalidKey("key contains a control character")
    if not _ALLOWED.fullmatch(key):
        raise InvalidKey("key has characters outside [A-Za-z0-9._/-]")
    segments = key.split("/")
    if any(segment in ("", ".", "..") for segment in segments):
        raise InvalidKey("key has an empty, '.' or '..' segment")
    if prefix is not None and not key.startswith(prefix):
        raise InvalidKey(f"key is not under {prefix!r}")
    return key


def new_upload_key(now: datetime | None = None, upload_id: str | None = None) -> str:
    """A fresh `uploads/{yyyy}/{mm}/{dd}/{uuid}` key (UTC date, 32-hex uuid4 unless `upload_id` is given).

    >>> new_upload_key(datetime(2026, 11, 24, tzinfo=UTC), "0f8fad5bd9cb469fa16570867728950e")
    'uploads/2026/11/24/0f8fad5bd9cb469fa16570867728950e'
    """
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    ident = upload_id or uuid.uuid4().hex
    if not re.fullmatch(r"[0-9a-f]{32}", ident):
        raise InvalidKey("upload id must be 32 lowercase hex characters")
    return validate_key(f"uploads/{moment:%Y/%m/%d}/{ident}")


def upload_key_id(key: str) -> str:
    """The upload id inside a key that `new_upload_key` made; `InvalidKey` for any other key."""
    found = _UPLOAD_KEY.fullmatch(validate_key(key))
    if found is None:
        raise InvalidKey("not an upload key")
    return found.group(1)


def video_root(video_id: str) -> str:
    """`videos/{video_id}/`, after checking the id is a plain identifier."""
    return f"videos/{_identifier(video_id, 'video_id')}/"


def video_prefix(video_id: str, version: str) -> str:
    """`videos/{video_id}/{version}/`, after checking both parts are plain identifiers."""
    return validate_key(f"{video_root(video_id)}{_identifier(version, 'version')}") + "/"


def _identifier(part: str, name: str) -> str:
    if not _ID.fullmatch(part):
        raise InvalidKey(f"{name} must match [A-Za-z0-9_-]{{1,128}}, got {part!r}")
    return part
