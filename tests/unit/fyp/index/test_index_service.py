"""The wiring, where it is plain data: the feed's Kafka consumer settings. (build_app on the real stack is
tests/integration/test_index_service.py.)"""

from __future__ import annotations

from types import SimpleNamespace

from fyp.index.config import ServiceConfig
from fyp.index.service import consumer_config


def test_the_feed_consumer_has_its_own_group_commits_nothing_and_sees_partition_ends():
    settings = SimpleNamespace(kafka_client_config=lambda: {"bootstrap.servers": "kafka:9092"})
    config = consumer_config(settings, ServiceConfig(name="videos", replica_id="r1"))
    assert config == {
        "bootstrap.servers": "kafka:9092",
        "group.id": "fyp-index-videos-r1",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
        "client.id": "fyp-index-r1",
    }
