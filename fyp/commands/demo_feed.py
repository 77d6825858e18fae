"""`fyp demo`'s feed part: one user's feed before and after a watch, and the experiment arm that served it.

`feed_demo` starts `fyp serve feed` (unless one answers on the default port) against the demo's index service,
asks for one user's feed, sends a real Watch of the feed's top video to the engagement topic (the user's own
partition key, as traffic does), and polls the feed until that video has left it: the features job puts it in
the user's recent-seen set and the feed's recent-seen filter drops it. It returns both feeds' top five with
their scores, the arms and the ranker version that served them (`fallback` when no ranker is saved: the feed
then ranks by the coarse score), and how long the change took; `left_feed` is False when it did not happen
within the timeout, and the demo then exits 1.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fyp.commands.demo_services import served
from fyp.config import Settings

__all__ = ["DEMO_USER", "feed_demo", "feed_service", "watch_event"]

DEMO_USER = "u0"  # a viewer of the generated traffic (ids u0 .. u{users-1}), so the feed has their history
SHOWN = 5  # items of each feed the report prints
FEED_N = 10


@contextmanager
def feed_service(settings: Settings, index_url: str, *, timeout_s: float = 120) -> Iterator[str]:
    """The feed service's URL: one already answering on the default port, else a subprocess for the demo."""
    from fyp.feed.service import default_port

    url = os.environ.get("FYP_FEED_URL") or f"http://127.0.0.1:{default_port()}"
    with served(settings, url, ["feed", "--index-url", index_url], log_name="demo-feed.log",
                timeout_s=timeout_s) as running:
        yield running


def watch_event(user_id: str, video_id: str, *, now_ms: int, seed: int, users: int, videos: int) -> dict[str, Any]:
    """A Watch of `video_id` by `user_id` with the fields the generated traffic gives it (author, sound,
    hashtags, length, the user's market), a complete watch; a video or user the generator does not know gets
    the author "demo" and the US:en market."""
    from fyp.embeddings.oracle import generator_index
    from fyp.traffic import TrafficConfig
    from fyp.traffic.catalog import Catalog

    catalog = Catalog(TrafficConfig(users=users, videos=videos), seed)
    (index,), (user,) = generator_index([video_id], "v"), generator_index([user_id], "u")
    event: dict[str, Any] = {"event_id": str(uuid.uuid4()), "event_time": now_ms, "user_id": user_id,
                             "video_id": video_id, "author_id": "demo", "sound_id": None, "region": "US",
                             "language": "en", "session_id": f"demo-feed-{uuid.uuid4().hex[:8]}", "hashtags": [],
                             "watch_ms": 10_000, "video_duration_ms": 10_000}
    if index >= 0:
        catalog.ensure_videos(int(index) + 1)
        video = catalog.video(int(index))
        event.update(author_id=video.author_id, sound_id=video.sound_id, hashtags=list(video.hashtags),
                     watch_ms=video.duration_ms, video_duration_ms=video.duration_ms)
    if 0 <= user < users:
        event["region"], event["language"] = catalog.locale(int(user))
    return event


def _send_watch(settings: Settings, event: dict[str, Any]) -> None:
    from confluent_kafka import Producer

    from schemas.registry import default_registry
    from schemas.topics import ENGAGEMENT

    producer = Producer({**settings.kafka_producer_config(), "linger.ms": 0})
    producer.produce(ENGAGEMENT.name, key=event["user_id"].encode(), value=default_registry().encode("Watch", event),
                     timestamp=event["event_time"])
    if producer.flush(30):
        raise RuntimeError("the demo's Watch event was not delivered to Kafka within 30 s")


def _top(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"video_id": i["video_id"], "score": i["score"]} for i in body["items"][:SHOWN]]


def feed_demo(settings: Settings, index_url: str, *, user_id: str, seed: int, users: int, videos: int,
              timeout_s: float = 120) -> dict[str, Any]:
    """The feed part of the demo (module docstring); returns what the report prints."""
    from fyp.feed.client import FeedClient
    from fyp.traffic import wall_clock_ms

    with feed_service(settings, index_url) as url:
        client = FeedClient(url)
        before = client.feed(user_id, n=FEED_N)
        result: dict[str, Any] = {"user": user_id, "arms": before["arms"], "model": before["model"],
                                  "before": _top(before)}
        if not before["items"]:
            raise RuntimeError(f"the feed of {user_id} is empty: nothing to watch ({before['counts']})")
        watched = before["items"][0]["video_id"]
        _send_watch(settings, watch_event(user_id, watched, now_ms=wall_clock_ms(), seed=seed, users=users,
                                          videos=videos))
        result["watched"] = watched
        started = time.monotonic()
        after = before
        while time.monotonic() - started < timeout_s:
            after = client.feed(user_id, n=FEED_N)
            if watched not in {i["video_id"] for i in after["items"]}:
                break
            time.sleep(0.2)
        left = watched not in {i["video_id"] for i in after["items"]}
        result.update(after=_top(after), after_arms=after["arms"], left_feed=left,
                      watch_to_gone_s=round(time.monotonic() - started, 2) if left else None)
    return result
