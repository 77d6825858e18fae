"""The capacity model's arithmetic (fyp/capacity.py): each figure follows its inputs as docs/CAPACITY.md says."""

from __future__ import annotations

import doctest
import math

import pytest

import fyp.capacity as capacity
from fyp.capacity import CapacityInputs, override, plan


def test_the_design_load_is_a_billion_users_at_a_hundred_events_a_day():
    result = plan(CapacityInputs())
    assert result.mean_events_per_s == pytest.approx(1e11 / 86_400)
    assert result.peak_events_per_s == pytest.approx(3 * 1e11 / 86_400)


def test_taskmanager_cores_scale_with_users_and_with_the_measured_cost():
    base = plan(CapacityInputs())
    expected = math.ceil(base.peak_events_per_s * 62.0 / 1e6 / 0.6)
    assert base.taskmanager_cores == expected
    assert abs(plan(override(CapacityInputs(), ["mau=2e9"])).taskmanager_cores - 2 * expected) <= 1
    cheaper = plan(override(CapacityInputs(), ["taskmanager_cpu_s_per_million_events=31"]))
    assert abs(cheaper.taskmanager_cores - expected / 2) <= 1


def test_redis_primaries_cover_memory_or_write_cpu_whichever_needs_more():
    small_data = override(CapacityInputs(), ["active_user_fraction=0.001", "live_videos=1", "authors=1", "sounds=1"])
    result = plan(small_data)
    assert result.redis_primaries == math.ceil(result.redis_cpu_cores_at_peak / 0.6)
    big = plan(CapacityInputs())
    assert big.redis_primaries == math.ceil(big.redis_total_gb / 25.0) >= big.redis_cpu_cores_at_peak / 0.6
    assert big.redis_replicas == big.redis_primaries


def test_kafka_brokers_carry_replicated_ingress_and_partitions_feed_every_core():
    result = plan(CapacityInputs())
    assert result.kafka_brokers == max(3, math.ceil(result.kafka_peak_mb_per_s * 3 / 60.0))
    assert result.kafka_partitions >= result.taskmanager_cores


def test_one_input_changed_on_the_command_line_and_a_wrong_one_refused():
    changed = override(CapacityInputs(), ["redis_bytes_per_entity.video=800", "replication_factor=5"])
    assert changed.redis_bytes_per_entity["video"] == 800 and changed.replication_factor == 5
    assert CapacityInputs().redis_bytes_per_entity["video"] != 800  # the default is not mutated
    for bad in ("nope=1", "mau", "mau=many", "redis_bytes_per_entity.planet=1"):
        with pytest.raises(ValueError):
            override(CapacityInputs(), [bad])
    with pytest.raises(ValueError, match="cpu_utilisation_at_peak"):
        plan(override(CapacityInputs(), ["cpu_utilisation_at_peak=0"]))


def test_doctests():
    assert doctest.testmod(capacity).failed == 0
