"""The video index service wired to the stack: a ScaNN index kept current from fyp.video-embeddings.v1 (Kafka),
snapshotted to S3, answering similar-video and candidate requests over HTTP with user embeddings and candidate
sets from Redis.

The parts, each usable alone: `fyp.index.config` (what a service is), `fyp.index.holder` (the index behind its
lock), `fyp.index.updates` (records to index changes), `fyp.index.feed` (the writer thread: restore, replay,
follow, snapshot), `fyp.index.users` (user embeddings), `fyp.index.api` (the HTTP routes). This module only
connects them to Kafka, Redis and S3; one process serves one index, which lives in its memory.

The model the index serves: `ServiceConfig.model`, else the restored snapshot's, else the newest trained model
in $FYP_HOME (`fyp.embeddings.store.current_model_name`); once known, and after each swap, it is published in
Redis (`fyp.index.users.SERVED_MODEL_KEY`) for the user-embedding worker.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI

from fyp.index.api import create_app
from fyp.index.config import ServiceConfig
from fyp.index.feed import IndexFeed
from fyp.index.holder import IndexHolder
from fyp.index.scann_index import ScannIndex
from fyp.index.snapshot import SnapshotStore
from fyp.index.users import SERVED_MODEL_KEY, RedisUserEmbeddings

__all__ = ["build_app", "consumer_config", "serve"]


def consumer_config(settings: Any, config: ServiceConfig) -> dict[str, Any]:
    """The feed's Kafka consumer: its own group per replica, no commits (offsets live in snapshots), and an
    end-of-partition event so the replay knows when it has caught up."""
    return {
        **settings.kafka_client_config(),
        "group.id": config.group_id,
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
        "client.id": f"fyp-index-{config.replica_id}",
    }


def build_app(settings: Any, config: ServiceConfig, *, bucket: str | None = None) -> FastAPI:
    """The service wired to the stack of `settings` (Kafka, Redis, S3); snapshots go to `bucket` (default: the
    media bucket)."""
    from confluent_kafka import Consumer

    from fyp.candidates import CandidateGenerator, RedisSources
    from fyp.index.snapshot import S3ObjectStore
    from fyp.media.publish import make_s3_client

    store = S3ObjectStore(make_s3_client(settings), bucket or settings.media_bucket)
    holder = IndexHolder(ScannIndex(dim=config.dim, params=config.params))
    client = settings.redis_client()

    def default_model() -> str:
        from fyp.embeddings.store import current_model_name  # torch: only when neither config nor snapshot says

        return current_model_name(settings.home)

    feed = IndexFeed(
        holder,
        config,
        consumer_factory=lambda: Consumer(consumer_config(settings, config)),
        snapshots=SnapshotStore(store, config.name),
        default_model=default_model,
        on_model=lambda model: client.set(SERVED_MODEL_KEY.format(name=config.name), model),
    )
    users = RedisUserEmbeddings(client)
    generator = CandidateGenerator(RedisSources(client), max_fetch=config.max_k)
    return create_app(holder, users=users, feed=feed, max_k=config.max_k, generator=generator)


def serve(settings: Any, config: ServiceConfig, *, host: str, port: int, bucket: str | None = None) -> None:
    """Run the service until interrupted (one process: the index lives in its memory)."""
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(build_app(settings, config, bucket=bucket), host=host, port=port, log_level="info")
