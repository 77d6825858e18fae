"""The local stack in start order; `fyp up` walks it forwards and `fyp down` backwards."""

from __future__ import annotations

from fyp.config import Settings
from fyp.stack.flink_cluster import JobManagerService, TaskManagerService, taskmanager_services
from fyp.stack.kafka_broker import KafkaService, broker_services
from fyp.stack.lake_maintenance import LakeMaintenanceService
from fyp.stack.redis_cluster import redis_services
from fyp.stack.redis_server import RedisService
from fyp.stack.seaweedfs import SeaweedService
from fyp.stack.service import ProcessService

__all__ = ["SERVICE_NAMES", "all_services", "select"]

# The lake-maintenance worker needs only SeaweedFS (S3 and the Iceberg catalog); it tends the tables Flink writes.
_ORDER = (KafkaService, RedisService, SeaweedService, LakeMaintenanceService, JobManagerService, TaskManagerService)
SERVICE_NAMES = tuple(cls.name for cls in _ORDER)


def all_services(settings: Settings) -> list[ProcessService]:
    services: list[ProcessService] = []
    for cls in _ORDER:
        if cls is RedisService:  # the cluster profile runs six Redis Cluster nodes in its place
            services.extend(redis_services(settings))
        elif cls is KafkaService:  # one per KRaft node: `kafka`, or `kafka-1` .. `kafka-3` in the cluster profile
            services.extend(broker_services(settings))
        elif cls is TaskManagerService:  # `settings.taskmanagers` of them: `flink-taskmanager-1` .. in a cluster
            services.extend(taskmanager_services(settings))
        else:
            services.append(cls(settings))
    return services


def _matches(service: ProcessService, name: str) -> bool:
    """`redis` names the single Redis and also every cluster node (`redis-0` .. `redis-5`)."""
    return service.name == name or service.name.startswith(f"{name}-")


def select(settings: Settings, names: list[str] | None) -> list[ProcessService]:
    """The named services in start order (all of them when `names` is empty)."""
    services = all_services(settings)
    if not names:
        return services
    unknown = sorted(n for n in names if not any(_matches(s, n) for s in services))
    if unknown:
        known = sorted(set(SERVICE_NAMES) | {s.name for s in services})
        raise ValueError(f"unknown service {', '.join(unknown)}; choose from {', '.join(known)}")
    return [s for s in services if any(_matches(s, n) for n in names)]
