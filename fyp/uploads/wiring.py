"""The upload API wired to this installation: S3 from the settings, pending uploads on Redis, `UploadCompleted`
to Kafka; takedowns on the media bucket, Kafka and the Iceberg audit table. `fyp serve upload`, `fyp upload`
without `--api`, `fyp takedown` and the tracked API process all start from here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fyp.config import Settings, load_settings
from fyp.uploads.service import UploadService

if TYPE_CHECKING:
    from fastapi import FastAPI

    from fyp.uploads.takedowns import TakedownService

__all__ = ["build_upload_app", "takedown_service", "upload_service"]


def upload_service(settings: Settings) -> UploadService:
    """The `UploadService` on this stack's S3 bucket, Redis (`RedisUploadStore`) and Kafka (`KafkaEmitter`)."""
    from connectors.kafka_emitter import KafkaEmitter
    from fyp.media.probe import Limits
    from fyp.media.publish import make_s3_client
    from fyp.uploads.store import RedisUploadStore

    client = settings.redis_client(socket_timeout=10)
    return UploadService(s3=make_s3_client(settings), bucket=settings.media_bucket, store=RedisUploadStore(client),
                         emit=KafkaEmitter(settings), limits=Limits.from_env())


def takedown_service(settings: Settings) -> TakedownService:
    """The `TakedownService` on this stack's media bucket, video hashes in Redis, Kafka and Iceberg audit table."""
    from connectors.iceberg_takedown_sink import IcebergTakedownAudit
    from connectors.kafka_emitter import KafkaEmitter
    from connectors.redis_video_store import RedisVideoStore
    from fyp.media.publish import S3ObjectStore, make_s3_client
    from fyp.uploads.takedowns import TakedownService

    return TakedownService(store=S3ObjectStore(make_s3_client(settings), settings.media_bucket),
                           lookup=RedisVideoStore.from_settings(settings).read, emit=KafkaEmitter(settings),
                           audit=IcebergTakedownAudit(settings))


def build_upload_app() -> FastAPI:
    """The upload API wired to this installation (uvicorn factory: `fyp.uploads.wiring:build_upload_app`)."""
    from fyp.uploads.api import create_app

    settings = load_settings()
    service = upload_service(settings)
    return create_app(s3=service.s3, bucket=service.bucket, store=service.store, emit=service.emit,
                      limits=service.limits, takedowns=takedown_service(settings))
