"""The local stack in start order; `fyp up` walks it forwards and `fyp down` backwards."""

from __future__ import annotations

from fyp.config import Settings
from fyp.stack.flink_cluster import JobManagerService, TaskManagerService
from fyp.stack.kafka_broker import KafkaService
from fyp.stack.redis_server import RedisService
from fyp.stack.seaweedfs import SeaweedService
from fyp.stack.service import ProcessService

__all__ = ["SERVICE_NAMES", "all_services", "select"]

_ORDER = (KafkaService, RedisService, SeaweedService, JobManagerService, TaskManagerService)
SERVICE_NAMES = tuple(cls.name for cls in _ORDER)


def all_services(settings: Settings) -> list[ProcessService]:
    return [cls(settings) for cls in _ORDER]


def select(settings: Settings, names: list[str] | None) -> list[ProcessService]:
    """The named services in start order (all of them when `names` is empty)."""
    services = all_services(settings)
    if not names:
        return services
    unknown = sorted(set(names) - set(SERVICE_NAMES))
    if unknown:
        raise ValueError(f"unknown service {', '.join(unknown)}; choose from {', '.join(SERVICE_NAMES)}")
    return [s for s in services if s.name in names]
