"""Which subtask of a keyed Flink operator a string key goes to: Flink's `KeyGroupRangeAssignment` (the key's Java
`String.hashCode`, Flink's `MathUtils.murmurHash` of it modulo the max parallelism is the key group, and key groups
are split into `parallelism` equal ranges). The skew check (fyp/training/explain.py) uses it to tell which subtask
of the features job's deduplication, keyed by event_id, each event went through: per partition and such subtask,
the job applies events in offset order (jobs/engagement_features.py). Hand-written because it runs without a JVM;
tests/flink/test_keygroups.py holds it to Flink's own on random keys.

>>> [java_string_hash(s) for s in ("", "a", "event-1", "é🙂")]
[0, 97, -1376503362, 1996878]
>>> [key_subtask(k, 2, 128) for k in ("u1", "u2", "u3")]
[1, 0, 1]
"""

from __future__ import annotations

__all__ = ["java_string_hash", "key_group", "key_subtask", "murmur_hash"]

_MASK = 0xFFFFFFFF


def _signed(x: int) -> int:
    return x - (1 << 32) if x & 0x80000000 else x


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _MASK


def java_string_hash(key: str) -> int:
    """Java's `String.hashCode`: over UTF-16 code units, a signed 32-bit int."""
    data = key.encode("utf-16-be", "surrogatepass")
    h = 0
    for i in range(0, len(data), 2):
        h = (31 * h + (data[i] << 8 | data[i + 1])) & _MASK
    return _signed(h)


def murmur_hash(code: int) -> int:
    """Flink's `MathUtils.murmurHash(int)`: non-negative."""
    k = (code & _MASK) * 0xCC9E2D51 & _MASK
    k = _rotl(k, 15) * 0x1B873593 & _MASK
    h = (_rotl(k, 13) * 5 + 0xE6546B64) & _MASK
    h ^= 4
    h ^= h >> 16
    h = h * 0x85EBCA6B & _MASK
    h ^= h >> 13
    h = h * 0xC2B2AE35 & _MASK
    h ^= h >> 16
    signed = _signed(h)
    if signed >= 0:
        return signed
    return -signed if signed != -(1 << 31) else 0


def key_group(key: str, max_parallelism: int) -> int:
    return murmur_hash(java_string_hash(key)) % max_parallelism


def key_subtask(key: str, parallelism: int, max_parallelism: int) -> int:
    """The subtask index (0-based) of an operator with `parallelism` subtasks that a string key is routed to."""
    if not 1 <= parallelism <= max_parallelism:
        raise ValueError(f"parallelism {parallelism} must be within 1..max parallelism {max_parallelism}")
    return key_group(key, max_parallelism) * parallelism // max_parallelism
