"""Failure tests of the cluster profile (`make test-cluster`): the integration tests' session stack, started with
FYP_PROFILE=cluster (3 Kafka brokers, Redis Cluster, 2 TaskManagers, checkpoints on S3). Skipped elsewhere."""

from __future__ import annotations

import pytest

from fyp.config import load_settings
from tests.integration.conftest import running_job, settings  # noqa: F401 - fixtures shared with tests/integration


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if load_settings().is_cluster:
        return
    skip = pytest.mark.skip(reason="needs the cluster profile: FYP_PROFILE=cluster (make test-cluster)")
    for item in items:
        if "tests/cluster/" in str(item.path):
            item.add_marker(skip)
