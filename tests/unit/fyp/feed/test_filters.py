"""fyp/feed/filters.py on plain data, and the not-interested serving sets' declarations."""

from __future__ import annotations

import pytest

from features.serving_sets import NOT_INTERESTED_AUTHORS, NOT_INTERESTED_VIDEOS, SERVING_SETS
from featurespec.sql import sorted_set_query
from fyp.feed.filters import AUTHOR_NOT_INTERESTED_THRESHOLD, UserFilters, VideoRecord, apply_filters, blocked_authors

RECORDS = {
    "ready": VideoRecord(video_id="ready", author_id="a1"),
    "removed": VideoRecord(video_id="removed", status="removed", author_id="a1"),
    "rejected": VideoRecord(video_id="rejected", status="rejected"),
    "processing": VideoRecord(video_id="processing", status="transcoding"),
    "by-a2": VideoRecord(video_id="by-a2", author_id="a2"),
    "unknown": VideoRecord(video_id="unknown", exists=False),
}


@pytest.mark.parametrize(("video", "state", "reason"), [
    ("ready", UserFilters(), None),
    ("ready", UserFilters(recent_seen=frozenset({"ready"})), "recent_seen"),
    ("ready", UserFilters(not_interested_videos=frozenset({"ready"})), "not_interested_video"),
    ("removed", UserFilters(), "status"),
    ("rejected", UserFilters(), "status"),
    ("processing", UserFilters(), "status"),
    ("unknown", UserFilters(), None),  # no catalogue record (generated traffic): passes
    ("not-in-records", UserFilters(), None),
    ("by-a2", UserFilters(not_interested_authors={"a2": AUTHOR_NOT_INTERESTED_THRESHOLD - 1}), None),
    ("by-a2", UserFilters(not_interested_authors={"a2": AUTHOR_NOT_INTERESTED_THRESHOLD}), "not_interested_author"),
    ("ready", UserFilters(not_interested_authors={"a2": 10}), None),
])
def test_each_filter(video, state, reason):
    result = apply_filters([video], state, RECORDS)
    assert result.kept == ([video] if reason is None else [])
    assert {k: v for k, v in result.dropped.items() if v} == ({} if reason is None else {reason: 1})


def test_order_is_kept_and_repeats_count_once():
    state = UserFilters(recent_seen=frozenset({"removed"}))
    result = apply_filters(["by-a2", "removed", "ready", "by-a2", "unknown"], state, RECORDS)
    assert result.kept == ["by-a2", "ready", "unknown"]
    assert result.dropped == {"recent_seen": 1, "not_interested_video": 0, "status": 0, "not_interested_author": 0}


def test_the_threshold_is_one_named_constant():
    assert AUTHOR_NOT_INTERESTED_THRESHOLD == 2
    assert blocked_authors({"a": 1.0, "b": 2.0}) == {"b"}
    assert blocked_authors({"a": 1.0, "b": 2.0}, threshold=1) == {"a", "b"}


def test_not_interested_sets_are_declared_for_the_features_job():
    assert NOT_INTERESTED_VIDEOS in SERVING_SETS and NOT_INTERESTED_AUTHORS in SERVING_SETS
    videos = sorted_set_query(NOT_INTERESTED_VIDEOS)
    assert "event_type = 'not_interested'" in videos and "GROUP BY" not in videos  # per event: ZADD GT, no state
    authors = sorted_set_query(NOT_INTERESTED_AUTHORS)
    assert "COUNT(*)" in authors and "GROUP BY `user_id`, `author_id`" in authors
    assert "STATE_TTL('src' = '2592000s')" in authors  # 30 days
    assert NOT_INTERESTED_VIDEOS.key_prefix == "fyp:not_interested_videos:v1:"
    assert NOT_INTERESTED_AUTHORS.key_prefix == "fyp:not_interested_authors:v1:"
