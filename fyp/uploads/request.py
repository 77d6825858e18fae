"""The body of POST /v1/uploads: an upload's metadata, each field within its limit (docs/UPLOADS.md, "Field limits").

The numbers come from udfs/limits.py, which the orchestration job and the workers check again on the records
(udfs/upload_limits.py).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from udfs.limits import MAX_CAPTION_CHARS, MAX_HASHTAG_BYTES, MAX_HASHTAGS, MAX_ID_BYTES, UPLOAD_CONTENT_TYPES

__all__ = ["ContentType", "Hashtag", "UploadRequest"]

ContentType = Literal[UPLOAD_CONTENT_TYPES]  # the five udfs/limits.py names: what `content_type_of` can prove


def _hashtag_bytes(tag: str) -> str:
    # Pydantic's max_length counts characters; the hashtag limit (a key part, udfs/limits.py) counts bytes.
    if len(tag.encode("utf-8")) > MAX_HASHTAG_BYTES:
        raise ValueError(f"a hashtag is at most {MAX_HASHTAG_BYTES} bytes of UTF-8")
    return tag


# Ids: the upload side's plain identifiers (no ':', no control character: they become Redis and S3 key parts), at
# most MAX_ID_BYTES; ASCII, so characters are bytes. Hashtags: `\w` (Unicode letters, digits, underscore) has
# neither `:` nor control characters either. Patterns run in pydantic-core's Rust regex engine, which does not
# backtrack: linear in the input, and the input is already within its length limit.
_PLAIN_ID = r"^[A-Za-z0-9_-]+$"
Hashtag = Annotated[str, Field(min_length=1, max_length=MAX_HASHTAG_BYTES, pattern=r"^\w+$"),
                    AfterValidator(_hashtag_bytes)]


class UploadRequest(BaseModel):
    """Body of POST /v1/uploads. Unknown fields are refused, so a client cannot smuggle in a key.

    Every field has a limit (docs/UPLOADS.md, "Field limits"); the numbers come from udfs/limits.py, which the
    orchestration job and the workers check again on the records (udfs/upload_limits.py).
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    author_id: str = Field(min_length=1, max_length=MAX_ID_BYTES, pattern=_PLAIN_ID)
    caption: str = Field(default="", max_length=MAX_CAPTION_CHARS, description="characters, as the app counts")
    hashtags: list[Hashtag] = Field(
        default_factory=list, max_length=MAX_HASHTAGS,
        description=f"without '#': letters, digits, underscores; each at most {MAX_HASHTAG_BYTES} bytes",
    )
    sound_id: str | None = Field(default=None, min_length=1, max_length=MAX_ID_BYTES, pattern=_PLAIN_ID)
    region: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")
    language: str = Field(pattern=r"^[a-z]{2}$", description="ISO 639-1")
    content_type: ContentType
    size_bytes: int = Field(gt=0, description="declared size; the stored object is measured at complete")

