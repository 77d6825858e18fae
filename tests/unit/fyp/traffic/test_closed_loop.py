"""The closed loop on plain data: a feed function instead of the service, a list instead of Kafka. The reactions are
the generator's behaviour model, so a feed of what the viewers skip must show as more skips and shorter sessions."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from fyp.feed.client import FeedError
from fyp.traffic import TrafficConfig
from fyp.traffic.behaviour import skip_probability
from fyp.traffic.closed_loop import FATIGUE_SKIPS, SessionState, head_views, session_cut, skipped_views, video_indices
from fyp.traffic.encoder import EncodedBatch, FastEncoder
from fyp.traffic.feed_loop import ClosedLoop, LoopPlan
from fyp.traffic.ids import RunIds
from fyp.traffic.model import IMPRESSION, TrafficModel
from schemas.registry import default_registry

WORLD = TrafficConfig(users=60, videos=400, jitter=timedelta(0))
SEED = 5
NOW_MS = 1_765_000_000_000


def _loop(fetch, plan: LoopPlan) -> tuple[ClosedLoop, list[EncodedBatch]]:
    model = TrafficModel(WORLD, SEED)
    encoder = FastEncoder(default_registry(), model.catalog, RunIds(run_id="12345678-1234-4abc-8def-000000000000"),
                          SEED)
    sent: list[EncodedBatch] = []
    return ClosedLoop(model, encoder, fetch, sent.append, plan, clock=lambda: NOW_MS, seed=SEED), sent


def _ranked_feed(worst_first: bool):
    """A feed that ranks the whole catalogue by the viewer's true skip probability, best or worst first."""
    catalog = TrafficModel(WORLD, SEED).catalog
    videos = np.arange(WORLD.videos)
    topic = catalog.author_topic[catalog.author[videos]]

    def fetch(user_id: str, n: int) -> dict:
        user = int(user_id[1:])
        match = np.isin(topic, catalog.interests[user])
        p = skip_probability(catalog.quality[videos], catalog.duration_ms[videos], match)
        order = np.argsort(-p if worst_first else p, kind="stable")
        arm = "loop_it:worst" if worst_first else "loop_it:best"
        return {"items": [{"video_id": f"v{v}"} for v in order[:n]], "arms": [arm]}

    return fetch


def test_video_ids_of_the_generators_world_are_reacted_to_and_others_counted():
    assert video_indices([{"video_id": "v12"}, {"video_id": "up-77"}, {"video_id": "v-1"}, {}]) == ([12], 3)


def test_a_session_ends_after_a_run_of_skips_across_pages():
    state = SessionState(user=1, session=2, skip_run=FATIGUE_SKIPS - 1)
    assert session_cut(state, [True, False], [False, False]) == (
        1, True, SessionState(user=1, session=2, position=1, skip_run=FATIGUE_SKIPS))
    views, ended, after = session_cut(SessionState(user=1, session=2), [True, False, True], [False] * 3)
    assert (views, ended, after.position, after.skip_run) == (3, False, 3, 1)
    assert session_cut(SessionState(user=1, session=2), [False, False], [True, False])[:2] == (1, True)
    assert session_cut(SessionState(user=1, session=2), [], [])[:2] == (0, True)


def test_head_views_keeps_whole_views_and_recounts():
    block = TrafficModel(WORLD, SEED).react([3] * 6, [0] * 6, list(range(6)), np.arange(6), NOW_MS)
    head = head_views(block, 2)
    assert len(head.video) == 2 and set(head.event_view) == {0, 1}
    assert head.counts["impression"] == 2 == sum(k == IMPRESSION for k in head.event_kind)
    assert sum(head.counts.values()) == len(head.event_kind)
    assert skipped_views(head) == skipped_views(block)[:2]


def test_a_feed_of_what_viewers_skip_shows_as_more_skips_and_shorter_sessions():
    results = {}
    for worst in (False, True):
        loop, sent = _loop(_ranked_feed(worst), LoopPlan(users=WORLD.users, sessions=3, feed_size=10, concurrency=1))
        report = loop.run()
        impressions = report.by_type["impression"]
        assert sum(len(b.pairs) for b in sent) == sum(report.by_type.values())
        assert report.feeds > 0 and not report.feed_errors
        (arm,) = report.arms.values()
        assert len(arm["per_user"]) == WORLD.users and arm["sessions"] == 3 * WORLD.users
        assert sum(c["impression"] for c in arm["per_user"].values()) == impressions
        results[worst] = (report.by_type["skip"] / impressions, impressions / report.sessions)
    (best_skips, best_length), (worst_skips, worst_length) = results[False], results[True]
    print(f"\nskip rate best-first {best_skips:.3f}, worst-first {worst_skips:.3f}; views per session "
          f"{best_length:.1f} vs {worst_length:.1f}")
    assert worst_skips > best_skips + 0.2
    assert worst_length < best_length


def test_the_events_are_the_pages_videos_in_order_with_the_sessions_positions_and_arms():
    registry = default_registry()
    loop, sent = _loop(_ranked_feed(False), LoopPlan(users=1, sessions=1, feed_size=5, concurrency=1, max_pages=1))
    loop.run()
    assert sent
    page = _ranked_feed(False)("u0", 10)["items"]
    impressions = [registry.decode(value).record for batch in sent for (_, value), kind in
                   zip(batch.pairs, batch.kinds, strict=True) if kind == IMPRESSION]
    assert [r["video_id"] for r in impressions] == [item["video_id"] for item in page][:len(impressions)]
    assert [r["position"] for r in impressions] == list(range(len(impressions)))
    assert all(r["arms"] == ["loop_it:best"] and r["surface"] == "for_you" for r in impressions)
    for batch in sent:
        assert batch.times == sorted(batch.times)  # a page's views follow one another
        assert all(key == b"u0" for key, _ in batch.pairs)


def test_a_failing_feed_is_retried_then_counted_and_the_run_goes_on():
    calls = {"n": 0}
    good = _ranked_feed(False)

    def flaky(user_id: str, n: int) -> dict:
        calls["n"] += 1
        if calls["n"] % 3 != 0:  # two failures before every answer
            raise FeedError(503, "index service down")
        return good(user_id, n)

    loop, _ = _loop(flaky, LoopPlan(users=2, sessions=1, concurrency=1, max_pages=1, attempts=3))
    report = loop.run()
    assert report.feeds == 2 and report.retries == 4 and not report.feed_errors

    def down(user_id: str, n: int) -> dict:
        raise FeedError(0, "not reachable")

    loop, sent = _loop(down, LoopPlan(users=3, sessions=1, concurrency=2, attempts=2))
    report = loop.run()
    assert report.feed_errors == {0: 3} and report.feeds == 0 and not sent
    assert report.as_json()["feed_errors"] == 3

    def refused(user_id: str, n: int) -> dict:
        raise FeedError(422, "bad user")

    loop, _ = _loop(refused, LoopPlan(users=1, sessions=1, attempts=4))
    report = loop.run()
    assert report.feed_errors == {422: 1} and report.retries == 0  # a 4xx is not retried


def test_the_plan_refuses_what_it_cannot_run():
    with pytest.raises(ValueError, match="either sessions"):
        LoopPlan(users=1)
    with pytest.raises(ValueError, match="feed size"):
        LoopPlan(users=1, sessions=1, feed_size=101)
    with pytest.raises(ValueError, match="world has"):
        _loop(_ranked_feed(False), LoopPlan(users=WORLD.users + 1, sessions=1))
