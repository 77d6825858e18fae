"""The partition of a key, as the Java clients and the pipeline's murmur2 producers compute it."""

from __future__ import annotations

import doctest

import fyp.traffic.partitioner
from fyp.traffic.partitioner import kafka_partition, murmur2
from fyp.traffic.producer import PRODUCER_SETTINGS


def test_murmur2_gives_kafkas_own_test_values():
    # Kafka's UtilsTest.testMurmur2: every tail length (0-3 bytes past a multiple of 4) and a long key.
    cases = {b"21": -973932308, b"foobar": -790332482, b"a-little-bit-long-string": -985981536,
             b"a-little-bit-longer-string": -1486304829,
             b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971, b"abc": 479470107}
    assert {key: murmur2(key) for key in cases} == cases
    assert doctest.testmod(fyp.traffic.partitioner, raise_on_error=True).failed == 0


def test_the_partition_is_the_positive_hash_modulo_the_count():
    assert PRODUCER_SETTINGS["partitioner"] == "murmur2_random"  # what the traffic's producer uses
    assert kafka_partition("foobar", 6) == (-790332482 & 0x7FFFFFFF) % 6
    assert {kafka_partition(f"u{i}", 6) for i in range(200)} == set(range(6))
