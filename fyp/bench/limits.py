"""`fyp bench limits`: the per-event cost of the worst events the field limits still admit, and of those just past.

Builds, from udfs/limits.py, the events that cost most within the limits (every text field at its byte limit,
30 hashtags of 100 bytes, a 2 KB comment of emoji, of words, of negations) and times, per event, the reference
decoder (udfs/envelope.py, the Python the Java decoder is held equal to) and the comment scorer the job runs per
comment (udfs/sentiment.py). Unbounded VADER on the same comments is timed beside them, as the peer that shows
what the bound buys. No services are needed.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fyp.bench.stats import latency_summary
from schemas.registry import default_registry
from udfs import limits
from udfs.envelope import to_engagement_row
from udfs.sentiment import comment_sentiment

__all__ = ["LimitCase", "hostile_comments", "run_limits"]

_COMMENT_BYTES = limits.TEXT_LIMITS["comment_text"]


def hostile_comments() -> dict[str, str]:
    """Comments at the byte limit built to drive VADER's cost up."""
    return {
        "emoji": "😀" * (_COMMENT_BYTES // 4),
        "spaced emoji": "😍 " * (_COMMENT_BYTES // 5),
        "words": ("love hate " * _COMMENT_BYTES)[:_COMMENT_BYTES],
        "negations": ("not good " * _COMMENT_BYTES)[:_COMMENT_BYTES],
        "boosters": ("so very extremely " * _COMMENT_BYTES)[:_COMMENT_BYTES],
        "one word": "x" * _COMMENT_BYTES,
    }


def _event(record_name: str, **fields: Any) -> bytes:
    at_limit = {name: "x" * limit for name, limit in limits.TEXT_LIMITS.items()
                if name in limits.ID_FIELDS and name not in ("region", "language")}
    record = {"event_time": int(time.time() * 1000), **at_limit,
              "region": "x" * limits.TEXT_LIMITS["region"], "language": "x" * limits.TEXT_LIMITS["language"],
              "hashtags": ["é" * (limits.MAX_HASHTAG_BYTES // 2)] * limits.MAX_HASHTAGS, **fields}
    record["event_id"] = str(uuid.uuid4())
    return default_registry().encode(record_name, record)


@dataclass(frozen=True, kw_only=True)
class LimitCase:
    name: str
    kind: str  # "decode" or "sentiment" or "sentiment, unbounded"
    latency: dict[str, float]

    @property
    def per_s(self) -> float:
        p50 = self.latency["p50_ms"]
        return round(1000 / p50, 1) if p50 > 0 else float("inf")


def _time(function: Callable[[], Any], rounds: int) -> dict[str, float]:
    function()  # warm caches (the lexicon, the registry)
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1000)
    return latency_summary(samples)


def run_limits(*, rounds: int = 200, unbounded_rounds: int = 3,
               progress: Callable[[str], None] | None = None) -> list[LimitCase]:
    """Time every case `rounds` times (the unbounded scorer `unbounded_rounds` times: it is slow)."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    say = progress or (lambda _name: None)
    now_ms = int(time.time() * 1000)
    comment = "é" * (_COMMENT_BYTES // 2)
    events = {
        "watch, every field at its limit": _event("Watch", watch_ms=limits.MAX_VIDEO_DURATION_MS,
                                                  video_duration_ms=limits.MAX_VIDEO_DURATION_MS),
        "comment of 2,048 bytes, every field at its limit": _event("Comment", comment_id="c", text=comment),
        "comment of 2,049 bytes (dead letter)": _event("Comment", comment_id="c", text=comment + "x"),
        "user_id with ':' (dead letter)": _event("Watch", user_id="a:b", watch_ms=1, video_duration_ms=1),
    }
    cases = []
    for name, payload in events.items():
        say(name)
        cases.append(LimitCase(name=name, kind="decode",
                               latency=_time(lambda p=payload: to_engagement_row(p, now_ms), rounds)))
    vader = SentimentIntensityAnalyzer()
    for name, text in hostile_comments().items():
        say(name)
        cases.append(LimitCase(name=name, kind="sentiment",
                               latency=_time(lambda t=text: comment_sentiment(t), rounds)))
        cases.append(LimitCase(name=name, kind="sentiment, unbounded",
                               latency=_time(lambda t=text: vader.polarity_scores(t), unbounded_rounds)))
    return cases
