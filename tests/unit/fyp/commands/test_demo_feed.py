"""The demo's Watch event: the generated traffic's fields for the video and the user, and a valid Watch record."""

from __future__ import annotations

from fyp.commands.demo_feed import watch_event
from fyp.traffic import TrafficConfig
from fyp.traffic.catalog import Catalog
from schemas.registry import default_registry


def test_a_watch_of_a_generated_video_carries_its_author_length_and_the_users_market() -> None:
    event = watch_event("u3", "v17", now_ms=1_800_000_000_000, seed=7, users=100, videos=200)
    catalog = Catalog(TrafficConfig(users=100, videos=200), 7)
    video = catalog.video(17)
    assert (event["author_id"], event["hashtags"], event["video_duration_ms"]) == \
        (video.author_id, list(video.hashtags), video.duration_ms)
    assert event["watch_ms"] == video.duration_ms  # a complete watch
    assert (event["region"], event["language"]) == catalog.locale(3)
    registry = default_registry()
    assert registry.decode(registry.encode("Watch", event)).record["video_id"] == "v17"


def test_a_video_the_generator_does_not_know_gets_the_demo_author() -> None:
    event = watch_event("someone", "upload-123", now_ms=1, seed=7, users=100, videos=200)
    assert (event["author_id"], event["region"], event["language"]) == ("demo", "US", "en")
