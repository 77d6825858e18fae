"""The exploration bucket: when a new video has had enough impressions, promote or demote it, once.

"New" means first seen less than `max_age` ago (event time). Engagement events carry no upload time, so the
age counts from the video's first impression, watch or like the job sees (its keyed state); a video's upload
is only moments before its first impression in practice, and this keeps the job on one topic. A video the job
first sees when it is already old (e.g. the job started late) looks new to it for `max_age`.

Counters per video are running totals (impressions, plays, completions, net likes); the rates are
completion rate = completions / plays and like rate = likes / impressions. At each update of a video that has
at least `min_impressions` and is still new:

    promote  if completion rate >= promote_completion_rate and like rate >= promote_like_rate
    demote   if completion rate <  demote_completion_rate  or  like rate <  demote_like_rate
    neither  otherwise: keep watching while the video is new

The first decision wins; the job keeps one decided flag per video, so each video is decided at most once.
`decide` is the rule in Python; `decision_sql` is the same rule as the Flink SQL the job runs
(jobs/exploration.py); tests check that they agree.
"""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from schemas.registry import default_registry

__all__ = [
    "DEMOTE",
    "PROMOTE",
    "Counters",
    "Decision",
    "ExplorationPolicy",
    "decide",
    "decision_event_id",
    "decision_payload",
    "decision_sql",
    "decisions_query",
    "parse_policy",
]

Decision = Literal["PROMOTE", "DEMOTE"]
PROMOTE: Decision = "PROMOTE"
DEMOTE: Decision = "DEMOTE"


@dataclass(frozen=True, kw_only=True)
class ExplorationPolicy:
    """When a new video is promoted or demoted.

    max_age: a video is new while its event time is less than this after its first seen event (default 24 h).
    min_impressions: no decision before this many impressions (default 100).
    promote_completion_rate, promote_like_rate: both met -> promote (defaults 0.5 and 0.04).
    demote_completion_rate, demote_like_rate: either missed -> demote (defaults 0.25 and 0.01); each at most
        its promote counterpart, so a video cannot qualify for both.
    state_ttl: how long the job keeps an idle video's counters and decided flag (default 7 days); a video
        idle for longer is new again to the job.

    >>> ExplorationPolicy(min_impressions=5).max_age
    datetime.timedelta(days=1)
    """

    max_age: timedelta = timedelta(hours=24)
    min_impressions: int = 100
    promote_completion_rate: float = 0.5
    promote_like_rate: float = 0.04
    demote_completion_rate: float = 0.25
    demote_like_rate: float = 0.01
    state_ttl: timedelta = timedelta(days=7)

    def __post_init__(self) -> None:
        if self.max_age <= timedelta(0):
            raise ValueError(f"max_age must be positive, got {self.max_age}")
        if self.min_impressions < 1:
            raise ValueError(f"min_impressions must be >= 1, got {self.min_impressions}")
        for name in ("promote_completion_rate", "promote_like_rate", "demote_completion_rate", "demote_like_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.demote_completion_rate > self.promote_completion_rate or self.demote_like_rate > self.promote_like_rate:
            raise ValueError("demote thresholds must not exceed the promote thresholds")
        if self.state_ttl < self.max_age:
            raise ValueError(f"state_ttl {self.state_ttl} is shorter than max_age {self.max_age}")

    @property
    def max_age_ms(self) -> int:
        return int(self.max_age.total_seconds() * 1000)


@dataclass(frozen=True, kw_only=True)
class Counters:
    """A video's running totals as of one of its events (times in epoch ms)."""

    first_seen_ms: int
    event_time_ms: int
    impressions: int
    plays: int
    completions: int
    likes: int  # likes minus unlikes

    @property
    def completion_rate(self) -> float:
        return self.completions / self.plays if self.plays > 0 else 0.0

    @property
    def like_rate(self) -> float:
        return self.likes / self.impressions if self.impressions > 0 else 0.0


def decide(counters: Counters, policy: ExplorationPolicy) -> Decision | None:
    """The decision these counters call for, or None (too few impressions, too old, or in between).

    >>> c = Counters(first_seen_ms=0, event_time_ms=60_000, impressions=100, plays=80, completions=60, likes=9)
    >>> decide(c, ExplorationPolicy())
    'PROMOTE'
    """
    if counters.impressions < policy.min_impressions:
        return None
    if counters.event_time_ms - counters.first_seen_ms >= policy.max_age_ms:
        return None
    completion, like = counters.completion_rate, counters.like_rate
    if completion >= policy.promote_completion_rate and like >= policy.promote_like_rate:
        return PROMOTE
    if completion < policy.demote_completion_rate or like < policy.demote_like_rate:
        return DEMOTE
    return None


def decisions_query(counters_view: str, policy: ExplorationPolicy) -> str:
    """The first decision per video (keep-first deduplication on video_id: keyed state, at most one row per
    video): video_id, author_id, decision, event_time, impressions, completion_rate, like_rate."""
    completion = "CASE WHEN plays > 0 THEN CAST(completions AS DOUBLE) / plays ELSE 0.0 END"
    like = "CASE WHEN impressions > 0 THEN CAST(likes AS DOUBLE) / impressions ELSE 0.0 END"
    decided = (f"SELECT *, {decision_sql(policy)} AS `decision`, {completion} AS `completion_rate`, "
               f"{like} AS `like_rate` FROM `{counters_view}`")
    ranked = (f"SELECT *, ROW_NUMBER() OVER (PARTITION BY `video_id` ORDER BY `proc_time`) AS `n` "
              f"FROM ({decided}) WHERE `decision` IS NOT NULL")
    return ("SELECT `video_id`, `author_id`, `decision`, `event_time`, `impressions`, `completion_rate`, "
            f"`like_rate` FROM ({ranked}) WHERE `n` = 1")


def decision_sql(policy: ExplorationPolicy) -> str:
    """`decide` as a Flink SQL expression over the columns first_seen_ms, event_time, impressions, plays,
    completions and likes (numeric); it yields 'PROMOTE', 'DEMOTE' or NULL."""
    completion = "(CASE WHEN plays > 0 THEN CAST(completions AS DOUBLE) / plays ELSE 0.0 END)"
    like = "(CASE WHEN impressions > 0 THEN CAST(likes AS DOUBLE) / impressions ELSE 0.0 END)"
    return (
        f"CASE WHEN impressions >= {policy.min_impressions} "
        f"AND event_time - first_seen_ms < {policy.max_age_ms} THEN CASE "
        f"WHEN {completion} >= {policy.promote_completion_rate!r} AND {like} >= {policy.promote_like_rate!r} "
        f"THEN '{PROMOTE}' "
        f"WHEN {completion} < {policy.demote_completion_rate!r} OR {like} < {policy.demote_like_rate!r} "
        f"THEN '{DEMOTE}' END END"
    )


_EVENT_ID_NAMESPACE = uuid.UUID("6f1c2a52-6c1e-4f55-9d0b-3c2f8f7e9a10")


def decision_event_id(video_id: str) -> str:
    """The same event_id for every emission of a video's decision: a consumer deduplicates a replay on it."""
    return str(uuid.uuid5(_EVENT_ID_NAMESPACE, f"exploration.v1:{video_id}"))


def decision_payload(*, video_id: str, author_id: str | None, decision: Decision, event_time_ms: int,
                     impressions: int, completion_rate: float, like_rate: float) -> bytes:
    """The ExplorationDecision record for fyp.exploration.v1, single-object encoded (schemas/registry.py)."""
    record = {
        "event_id": decision_event_id(video_id), "event_time": event_time_ms, "video_id": video_id,
        "author_id": author_id or "", "decision": decision, "impressions": impressions,
        "completion_rate": float(completion_rate), "like_rate": float(like_rate),
    }
    return default_registry().encode("ExplorationDecision", record)


def _seconds(text: str) -> timedelta:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        return timedelta(seconds=float(text[:-1]) * units[text[-1]]) if text[-1] in units else \
            timedelta(seconds=float(text))
    except (ValueError, IndexError) as exc:
        raise argparse.ArgumentTypeError(f"a duration looks like 90s, 30m, 24h or 7d, got {text!r}") from exc


def parse_policy(argv: Sequence[str]) -> ExplorationPolicy:
    """The policy from a job's command line (`--max-age 24h --min-impressions 100 ...`); unknown flags are
    left to other parsers (connectors/job_options.py).

    >>> parse_policy(["--min-impressions", "5", "--max-age", "2h", "--topic", "x"]).min_impressions
    5
    """
    default = ExplorationPolicy()
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--max-age", type=_seconds, default=default.max_age)
    parser.add_argument("--min-impressions", type=int, default=default.min_impressions)
    parser.add_argument("--promote-completion-rate", type=float, default=default.promote_completion_rate)
    parser.add_argument("--promote-like-rate", type=float, default=default.promote_like_rate)
    parser.add_argument("--demote-completion-rate", type=float, default=default.demote_completion_rate)
    parser.add_argument("--demote-like-rate", type=float, default=default.demote_like_rate)
    parser.add_argument("--state-ttl", type=_seconds, default=default.state_ttl)
    known, _ = parser.parse_known_args(list(argv))
    return ExplorationPolicy(**vars(known))
