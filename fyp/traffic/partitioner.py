"""Which Kafka partition a key lands on: the Java clients' default partitioner, which the pipeline's producers use
too (`"partitioner": "murmur2_random"`, fyp/traffic/producer.py): murmur2 of the key's bytes, made non-negative,
modulo the partition count. `fyp demo` uses it to tell which partition of the engagement topic (keyed by user)
a user's events are on, and so measure how far the features job trails each partition. Hand-written because no
dependency of the project exposes it: confluent-kafka partitions inside librdkafka and offers no Python call for it.

>>> [murmur2(b) for b in (b"21", b"foobar", b"abc")]
[-973932308, -790332482, 479470107]
"""

from __future__ import annotations

__all__ = ["kafka_partition", "murmur2"]

_SEED, _M, _MASK = 0x9747B28C, 0x5BD1E995, 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """MurmurHash2 as Kafka's `Utils.murmur2` computes it: a signed 32-bit int."""
    h = (_SEED ^ len(data)) & _MASK
    whole = len(data) - len(data) % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = data[whole:]
    if tail:
        for shift, byte in reversed(list(enumerate(tail))):
            h ^= byte << (8 * shift)
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def kafka_partition(key: str, partitions: int) -> int:
    """The partition of a record keyed by `key` (UTF-8) on a topic of `partitions` partitions."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions
