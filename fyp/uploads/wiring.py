"""The upload API wired to this installation: S3 from the settings, pending uploads on Redis, `UploadCompleted`
to Kafka. `fyp serve upload`, `fyp upload` without `--api` and the tracked API process all start from here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fyp.config import Settings, load_settings
from fyp.uploads.service import UploadService

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["build_upload_app", "upload_service"]


def upload_service(settings: Settings) -> UploadService:
    """The `UploadService` on this stack's S3 bucket, Redis (`RedisUploadStore`) and Kafka (`KafkaEmitter`)."""
    from connectors.kafka_emitter import KafkaEmitter
    from fyp.media.probe import Limits
    from fyp.media.publish import make_s3_client
    from fyp.uploads.store import RedisUploadStore

    client = settings.redis_client(socket_timeout=10)
    return UploadService(s3=make_s3_client(settings), bucket=settings.media_bucket, store=RedisUploadStore(client),
                         emit=KafkaEmitter(settings), limits=Limits.from_env())


def build_upload_app() -> FastAPI:
    """The upload API wired to this installation (uvicorn factory: `fyp.uploads.wiring:build_upload_app`)."""
    from fyp.uploads.api import create_app

    service = upload_service(load_settings())
    return create_app(s3=service.s3, bucket=service.bucket, store=service.store, emit=service.emit,
                      limits=service.limits)
