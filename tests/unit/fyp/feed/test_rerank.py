"""The reranker's rules hold in every feed hypothesis can build (fyp/feed/rerank.py)."""

from __future__ import annotations

import time
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fyp.feed.rerank import FeedItem, RankedVideo, RerankPolicy, rerank

STATUSES = ("ready", "ready", "ready", "removed", "rejected", "failed", "transcoding")


@st.composite
def ranked_videos(draw) -> list[RankedVideo]:
    count = draw(st.integers(0, 40))
    return [RankedVideo(
        video_id=f"v{draw(st.integers(0, 60))}",  # ids may repeat: the reranker keeps the first
        score=draw(st.floats(-5, 5, allow_nan=False)),
        author_id=f"a{draw(st.integers(0, 6))}",
        sound_id=draw(st.none() | st.sampled_from(["s0", "s1", "s2", "s3"])),
        status=draw(st.sampled_from(STATUSES)),
        age_restricted=draw(st.booleans()),
        audio_muted=draw(st.booleans()),
        exploration=draw(st.booleans()),
        embedding=draw(st.none() | st.lists(st.floats(-1, 1, allow_nan=False), min_size=4, max_size=4)),
    ) for _ in range(count)]


def _adjacent_ok(a: RankedVideo, b: RankedVideo) -> bool:
    return a.author_id != b.author_id and (b.sound_id is None or b.sound_id != a.sound_id)


@settings(max_examples=150, deadline=None)
@given(videos=ranked_videos(), n=st.integers(1, 20), adult=st.booleans(),
       policy=st.builds(RerankPolicy, mmr_lambda=st.floats(0, 1), fresh_every=st.integers(0, 6)))
def test_every_feed_keeps_the_rules(videos: list[RankedVideo], n: int, adult: bool, policy: RerankPolicy) -> None:
    feed = rerank(videos, n=n, viewer_is_adult=adult, policy=policy)
    first = {}
    for video in videos:
        first.setdefault(video.video_id, video)
    shown = [first[item.video_id] for item in feed]

    assert len(feed) <= n
    assert len({item.video_id for item in feed}) == len(feed), "a video twice"
    assert all(v.status == "ready" for v in shown), "a video that is not ready"
    assert adult or not any(v.age_restricted for v in shown), "age-restricted video to a minor"
    assert all(item.audio_muted == v.audio_muted for item, v in zip(feed, shown, strict=True)), "mute flag lost"
    assert all(_adjacent_ok(a, b) for a, b in pairwise(shown)), "same author or sound adjacent"

    eligible = [v for v in first.values() if v.status == "ready" and (adult or not v.age_restricted)]
    unused = [v for v in eligible if v.video_id not in {item.video_id for item in feed}]
    if len(feed) < n:  # shorter only when nothing left may follow the last video
        assert not any(_adjacent_ok(shown[-1], v) for v in unused) if shown else not eligible
    for position, item in enumerate(feed):  # a fresh slot takes an exploration video whenever one may go there
        if policy.fresh_every and (position + 1) % policy.fresh_every == 0:
            earlier = {i.video_id for i in feed[:position]}
            could = [v for v in eligible if v.exploration and v.video_id not in earlier
                     and (position == 0 or _adjacent_ok(shown[position - 1], v))]
            assert (item.slot == "fresh") == bool(could)
            assert not could or shown[position].exploration


def test_pure_relevance_keeps_score_order_when_no_rule_binds() -> None:
    videos = [RankedVideo(video_id=f"v{i}", score=float(i), author_id=f"a{i}") for i in range(30)]
    feed = rerank(videos, n=10, viewer_is_adult=True, policy=RerankPolicy(mmr_lambda=1.0, fresh_every=0))
    assert [item.video_id for item in feed] == [f"v{i}" for i in range(29, 19, -1)]


def test_mmr_moves_a_near_copy_down() -> None:
    """Two near-identical embeddings at the top: with lambda 0.5 the second drops below a distinct video."""
    videos = [RankedVideo(video_id="top", score=1.0, author_id="a", embedding=[1, 0, 0]),
              RankedVideo(video_id="copy", score=0.95, author_id="b", embedding=[0.99, 0.05, 0]),
              RankedVideo(video_id="other", score=0.9, author_id="c", embedding=[0, 1, 0]),
              RankedVideo(video_id="last", score=0.0, author_id="d", embedding=[0, 0, 1])]
    order = [item.video_id for item in rerank(videos, n=4, viewer_is_adult=True,
                                              policy=RerankPolicy(mmr_lambda=0.5, fresh_every=0))]
    assert order.index("other") < order.index("copy")
    assert [i.video_id for i in rerank(videos, n=4, viewer_is_adult=True,
                                       policy=RerankPolicy(mmr_lambda=1.0, fresh_every=0))][:2] == ["top", "copy"]


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match=r"n must be in 1\.\.100"):
        rerank([], n=0, viewer_is_adult=True)
    with pytest.raises(ValueError, match="mmr_lambda"):
        RerankPolicy(mmr_lambda=1.5)
    with pytest.raises(ValueError, match="fresh_every"):
        RerankPolicy(fresh_every=-1)


def test_cost_is_bounded_for_a_full_request() -> None:
    """500 candidates with 64-d embeddings into a 100-video page: well under the feed's budget, even on a busy
    machine (the docstring's ~1 ms is for n = 10)."""
    rng = np.random.default_rng(7)
    videos = [RankedVideo(video_id=f"v{i}", score=float(rng.random()), author_id=f"a{i % 97}",
                          sound_id=f"s{i % 13}", exploration=i % 10 == 0, embedding=rng.normal(size=64).tolist())
              for i in range(500)]
    started = time.perf_counter()
    feed: list[FeedItem] = rerank(videos, n=100, viewer_is_adult=True)
    elapsed = time.perf_counter() - started
    assert len(feed) == 100
    assert elapsed < 0.5, f"{elapsed * 1000:.0f} ms"
