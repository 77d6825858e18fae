"""A corpus of hostile and borderline engagement events, each with the dead-letter reason it must get (None: it is
good and must be featured). Built from udfs/limits.py, so a changed limit moves the corpus with it.

Shared by the reference decoder's unit tests, the Java-vs-Python agreement test (tests/flink) and the standing
adversarial test against the running job (tests/integration/test_hostile_events.py).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from udfs import limits

__all__ = ["FILLERS", "HostileCase", "hostile_cases"]

# The fields each record of the corpus needs besides a case's own and the common ones (ids, region, hashtags):
# ordinary values, so that only the case's fields can break a contract.
FILLERS: dict[str, dict[str, Any]] = {
    "Watch": {"watch_ms": 1_000, "video_duration_ms": 10_000},
    "Skip": {"dwell_ms": 500, "video_duration_ms": 10_000},
    "Loop": {"loop_count": 1, "video_duration_ms": 10_000},
    "Share": {"channel": "sms"},
    "Comment": {"comment_id": "c1", "text": "nice"},
    "Impression": {"position": 0, "surface": "for_you"},
}

# Three-byte characters fill a byte limit exactly when the limit is a multiple of 3; "é" (2 bytes) otherwise.
_WIDE = "✓"


@dataclass(frozen=True)
class HostileCase:
    """One event: its record, the fields to set, and the reason the decoder must give."""

    name: str
    record_name: str
    fields: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None


def _bytes(n: int, char: str = "x") -> str:
    """A string of exactly n UTF-8 bytes, using multi-byte characters where they fit."""
    wide = len(char.encode())
    return char * (n // wide) + "x" * (n % wide)


def hostile_cases(tag: str | None = None) -> list[HostileCase]:
    """Every case; `tag` makes the ids unique to one run (the integration test sends them to a live topic)."""
    tag = tag or uuid.uuid4().hex[:8]
    cases: list[HostileCase] = []
    record_of = {"action": ("Share", "channel"), "comment_text": ("Comment", "text")}
    for name, limit in limits.TEXT_LIMITS.items():
        record_name, source = record_of.get(name, ("Watch", name))
        fill = _bytes(limit, _WIDE if name in ("comment_text", "action") else "x")
        if name in ("user_id", "video_id", "event_id"):
            fill = (tag + "-" + fill)[:limit]
        over = fill + "x"
        cases.append(HostileCase(f"{name} at its limit", record_name, {source: fill}))
        cases.append(HostileCase(f"{name} over its limit", record_name, {source: over}, f"too_long:{name}"))
    for name in limits.ID_FIELDS:
        value = f"{tag}:{name}"
        cases.append(HostileCase(f"{name} with the key separator", "Watch", {name: value}, f"bad_id:{name}"))
        cases.append(HostileCase(f"{name} with a control character", "Watch", {name: f"{tag}\x00{name}"},
                                 f"bad_id:{name}"))
    most_tags = [f"t{i}" for i in range(limits.MAX_HASHTAGS)]
    cases += [
        HostileCase("as many hashtags as allowed", "Watch", {"hashtags": most_tags}),
        HostileCase("one hashtag too many", "Watch", {"hashtags": [*most_tags, "extra"]}, "too_many:hashtags"),
        HostileCase("a hashtag at its limit", "Watch", {"hashtags": [_bytes(limits.MAX_HASHTAG_BYTES, "é")]}),
        HostileCase("a hashtag over its limit", "Watch", {"hashtags": ["x" * (limits.MAX_HASHTAG_BYTES + 1)]},
                    "too_long:hashtags"),
        HostileCase("a hashtag with the key separator", "Watch", {"hashtags": ["ok", "a:b"]}, "bad_id:hashtags"),
        HostileCase("non-Latin hashtags", "Watch", {"hashtags": ["日本語", "dança", "😀"]}),
        HostileCase("watch to the tolerance", "Watch",
                    {"watch_ms": 10_000 + limits.WATCH_TOLERANCE_MS, "video_duration_ms": 10_000}),
        HostileCase("watch past the duration", "Watch",
                    {"watch_ms": 10_001 + limits.WATCH_TOLERANCE_MS, "video_duration_ms": 10_000},
                    "out_of_range:watch_ms"),
        HostileCase("watch of 10^12 ms", "Watch", {"watch_ms": 10**12, "video_duration_ms": 10_000},
                    "out_of_range:watch_ms"),
        HostileCase("the longest video", "Watch",
                    {"watch_ms": 1, "video_duration_ms": limits.MAX_VIDEO_DURATION_MS}),
        HostileCase("a video too long", "Watch",
                    {"watch_ms": 1, "video_duration_ms": limits.MAX_VIDEO_DURATION_MS + 1},
                    "out_of_range:video_duration_ms"),
        HostileCase("the longest dwell", "Skip", {"dwell_ms": limits.MAX_DWELL_MS, "video_duration_ms": 10_000}),
        HostileCase("a dwell too long", "Skip", {"dwell_ms": limits.MAX_DWELL_MS + 1, "video_duration_ms": 10_000},
                    "out_of_range:dwell_ms"),
        HostileCase("loop count 0", "Loop", {"loop_count": 0, "video_duration_ms": 10_000}, "out_of_range:loop_count"),
        HostileCase("the most loops", "Loop", {"loop_count": limits.MAX_LOOP_COUNT, "video_duration_ms": 10_000}),
        HostileCase("too many loops", "Loop", {"loop_count": limits.MAX_LOOP_COUNT + 1, "video_duration_ms": 10_000},
                    "out_of_range:loop_count"),
        HostileCase("negative watch", "Watch", {"watch_ms": -1, "video_duration_ms": 10_000},
                    "negative_duration:watch_ms"),
        HostileCase("as many arms as allowed", "Impression", {"arms": [f"e{i}:a" for i in range(limits.MAX_ARMS)]}),
        HostileCase("one arm too many", "Impression", {"arms": [f"e{i}:a" for i in range(limits.MAX_ARMS + 1)]},
                    "too_many:arms"),
        HostileCase("an arm id at its limit", "Impression",
                    {"arms": ["e" * (limits.MAX_ARM_ID_BYTES // 2) + ":" + "a" * (limits.MAX_ARM_ID_BYTES // 2)]}),
        HostileCase("an arm id over its limit", "Impression",
                    {"arms": ["e" * (limits.MAX_ARM_ID_BYTES // 2) + ":" + "a" * (limits.MAX_ARM_ID_BYTES // 2 + 1)]},
                    "too_long:arms"),
        HostileCase("an arm id without its experiment", "Impression", {"arms": ["ranker:v2", "control"]},
                    "bad_arm:arms"),
        HostileCase("an arm id with two separators", "Impression", {"arms": ["a:b:c"]}, "bad_arm:arms"),
        HostileCase("an arm id with a capital", "Impression", {"arms": ["Ranker:v2"]}, "bad_arm:arms"),
        HostileCase("an arm id with a control character", "Impression", {"arms": ["ranker:v\x002"]}, "bad_arm:arms"),
        HostileCase("an emoji-only comment at the limit", "Comment", {"text": "😀" * (2_048 // 4)}),
        HostileCase("a right-to-left and zero-width comment", "Comment", {"text": "\u202eevil\u200b text"}),
    ]
    return cases
