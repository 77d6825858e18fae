"""The engagement event's field contracts: size limits, the id alphabet, and plausible numeric ranges.

One event must not stall, corrupt or silently skew what the pipeline holds. So every field has a limit, and an
event over any limit becomes a dead letter whose reason names the field (udfs/envelope.py, which checks these in
row order; the Java decoder udfs/java/envelope applies the same numbers, held equal by
tests/flink/test_decoder_agreement.py). Nothing is clamped: a clamped value would be a value the client never
sent, and the dead letter keeps the original for `fyp dlq replay` after a fix.

Sizes are UTF-8 bytes, so a check costs at most the limit, whatever the client sent (the Avro body is already
read by then; Kafka's own `max.message.bytes` bounds that).

Ids are Redis key parts (docs/REDIS_LAYOUT.md joins them with `:`), so an id must not contain `:`: otherwise user
`a:b` with author `c` and user `a` with author `b:c` would share one key. Control characters are refused too (they
break logs, CSV exports and terminals). Refusing keeps keys readable; escaping would change every key.

Experiment arm ids (Impression v2 `arms`) are the one exception: each is 'experiment:arm' by design
(fyp/experiments/assign.py `Assignment.arm_id`), so the generic id rule would refuse every one. They have their own
rule instead, `valid_arm_id`: two names of a-z, 0-9 and _ (each starting with a letter, as fyp/experiments/spec.py
requires of declared names) joined by exactly one `:`. An arm id is never a Redis key part, and the report splits
it at its one `:` (fyp/experiments/report.py).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "DURATION_FIELDS",
    "ID_FIELDS",
    "KEY_SEPARATOR",
    "MAX_ARMS",
    "MAX_ARM_ID_BYTES",
    "MAX_CAPTION_CHARS",
    "MAX_DWELL_MS",
    "MAX_HASHTAGS",
    "MAX_HASHTAG_BYTES",
    "MAX_ID_BYTES",
    "MAX_LOOP_COUNT",
    "MAX_OCR_TEXT_CHARS",
    "MAX_VIDEO_DURATION_MS",
    "TEXT_LIMITS",
    "UPLOAD_CONTENT_TYPES",
    "WATCH_TOLERANCE_MS",
    "field_error",
    "invalid_id_reason",
    "valid_arm_id",
]

KEY_SEPARATOR = ":"

# Text fields of the engagement row and their limits in UTF-8 bytes, in row order.
TEXT_LIMITS: dict[str, int] = {
    "event_id": 128,
    "user_id": 128,
    "video_id": 128,
    "author_id": 128,
    "sound_id": 128,
    "region": 16,  # ISO 3166-1 alpha-2 in practice; room for subdivisions
    "language": 35,  # the longest common BCP 47 tag
    "session_id": 128,
    "action": 64,  # an enum symbol, a share channel or a not-interested reason
    "comment_text": 2_048,  # ~150 characters is the app's limit; 2 KB leaves room for emoji and other scripts
}
# Fields that become Redis key parts (or could): no separator, no control characters.
ID_FIELDS: tuple[str, ...] = (
    "event_id", "user_id", "video_id", "author_id", "sound_id", "region", "language", "session_id",
)
MAX_HASHTAGS = 30  # per event
MAX_HASHTAG_BYTES = 100  # per hashtag; each is a key part of user x hashtag
# Impression `arms`: a user is in at most one experiment per layer (fyp/experiments/spec.py), so this is the
# number of layers one impression can be served under; 16 is far more than any deployment declares.
MAX_ARMS = 16
# 'experiment:arm': two names of at most fyp/experiments/spec.py MAX_NAME_CHARS (64) and the separator.
MAX_ARM_ID_BYTES = 129

DURATION_FIELDS: tuple[str, ...] = ("watch_ms", "video_duration_ms", "dwell_ms")
MAX_VIDEO_DURATION_MS = 3_600_000  # one hour: the longest upload any short-video app takes
MAX_DWELL_MS = 3_600_000  # an hour on one screen before a skip
WATCH_TOLERANCE_MS = 1_000  # watch_ms may pass video_duration_ms by this much (player clocks)
MAX_LOOP_COUNT = 10_000  # rewatches in one session

# Upload records (fyp.uploads.v1; udfs/upload_limits.py checks them, docs/UPLOADS.md "Field limits"). Their ids,
# hashtags, region and language follow the engagement limits above; these are the upload side's own fields.
MAX_ID_BYTES = TEXT_LIMITS["video_id"]  # every id of every record: one id limit for the whole pipeline
MAX_CAPTION_CHARS = 2_200  # the app's caption limit, in characters as the app counts (so <= 8,800 UTF-8 bytes)
MAX_OCR_TEXT_CHARS = 2_000  # what moderation keeps of the text it reads in the frames (ModerationResult.ocr_text)
# What the upload API's sniffing can prove (fyp/uploads/service.py content_type_of); nothing else is a video here.
UPLOAD_CONTENT_TYPES: tuple[str, ...] = (
    "video/mp4", "video/quicktime", "video/webm", "video/x-matroska", "video/x-msvideo",
)


def invalid_id_reason(value: str) -> str | None:
    """`separator` if `value` holds the key separator, `control` if it holds a control character, else None.

    >>> invalid_id_reason("u1"), invalid_id_reason("a:b"), invalid_id_reason("a\\nb")
    (None, 'separator', 'control')
    """
    if KEY_SEPARATOR in value:
        return "separator"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return "control"
    return None


def valid_arm_id(value: str) -> bool:
    """True if `value` is 'experiment:arm': two names of [a-z0-9_], each starting with a-z, and one `:`.

    >>> valid_arm_id("ranker_v2:control"), valid_arm_id("ranker_v2"), valid_arm_id("a:b:c"), valid_arm_id("A:b")
    (True, False, False, False)
    """
    experiment, separator, arm = value.partition(KEY_SEPARATOR)
    return bool(separator) and _valid_name(experiment) and _valid_name(arm)


def _valid_name(part: str) -> bool:
    # Explicit ranges, not str.isalnum: that accepts non-ASCII letters and digits, the Java port does not.
    return bool(part) and "a" <= part[0] <= "z" and all("a" <= c <= "z" or "0" <= c <= "9" or c == "_" for c in part)


def _utf8_length(value: str, limit: int) -> int:
    """The UTF-8 length of `value` when that could exceed `limit`; cheap for short strings."""
    return len(value) if len(value) * 4 <= limit else len(value.encode("utf-8", "surrogatepass"))


def field_error(row: dict[str, Any]) -> str | None:
    """The first broken contract of a decoded event (fields by row name), as a dead-letter reason, or None.

    Checked in this order: text sizes (`too_long:<field>`) and ids (`bad_id:<field>`) in row order, then the
    hashtags (`too_many:hashtags`, `too_long:hashtags`, `bad_id:hashtags`), then the experiment arms
    (`too_many:arms`, `too_long:arms`, `bad_arm:arms`: one not 'experiment:arm', `valid_arm_id`), then durations below 0
    (`negative_duration:<field>`), then ranges (`out_of_range:<field>`: watch_ms beyond the video's duration plus
    WATCH_TOLERANCE_MS, a duration or dwell over an hour, a loop count outside 1..MAX_LOOP_COUNT).

    >>> field_error({"user_id": "a:b"})
    'bad_id:user_id'
    >>> field_error({"watch_ms": 10**12, "video_duration_ms": 10_000})
    'out_of_range:watch_ms'
    """
    for name, limit in TEXT_LIMITS.items():
        value = row.get(name)
        if value is None:
            continue
        if _utf8_length(value, limit) > limit:
            return f"too_long:{name}"
        if name in ID_FIELDS and invalid_id_reason(value):
            return f"bad_id:{name}"
    hashtags = row.get("hashtags") or ()
    if len(hashtags) > MAX_HASHTAGS:
        return "too_many:hashtags"
    for tag in hashtags:
        if _utf8_length(tag, MAX_HASHTAG_BYTES) > MAX_HASHTAG_BYTES:
            return "too_long:hashtags"
        if invalid_id_reason(tag):
            return "bad_id:hashtags"
    arms = row.get("arms") or ()
    if len(arms) > MAX_ARMS:
        return "too_many:arms"
    for arm in arms:
        if _utf8_length(arm, MAX_ARM_ID_BYTES) > MAX_ARM_ID_BYTES:
            return "too_long:arms"
        if not valid_arm_id(arm):
            return "bad_arm:arms"
    for name in DURATION_FIELDS:
        value = row.get(name)
        if value is not None and value < 0:
            return f"negative_duration:{name}"
    duration = row.get("video_duration_ms")
    if duration is not None and duration > MAX_VIDEO_DURATION_MS:
        return "out_of_range:video_duration_ms"
    watch = row.get("watch_ms")
    if watch is not None and (watch > MAX_VIDEO_DURATION_MS + WATCH_TOLERANCE_MS
                              or (duration is not None and watch > duration + WATCH_TOLERANCE_MS)):
        return "out_of_range:watch_ms"
    dwell = row.get("dwell_ms")
    if dwell is not None and dwell > MAX_DWELL_MS:
        return "out_of_range:dwell_ms"
    loops = row.get("loop_count")
    if loops is not None and not 1 <= loops <= MAX_LOOP_COUNT:
        return "out_of_range:loop_count"
    return None
