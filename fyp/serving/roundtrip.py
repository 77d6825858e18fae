"""One Redis round trip of many single-key reads, on a single Redis or a Redis Cluster: the feed's two reads and
the candidate sources' hidden-video check.

`read(client, keys, commands)` answers the GET of every key, then the reply of every command (single-key reads,
the key second: `("HMGET", key, *fields)`, `("ZRANGE", key, 0, -1, "WITHSCORES")`), in order, as raw RESP2
values (bytes, lists of bytes, None); a flat ZRANGE ... WITHSCORES list is left to the caller to pair.

- A single Redis: the keys as one MGET, then the commands, packed by hand into one write on one pooled
  connection and parsed by one hiredis Reader. redis-py's pipeline packs and parses each of ~500 commands in
  Python (its `pack_command`, `read_response`, response callbacks): the feed's filter read spent about as long
  there as in everything else (cProfile, docs/FEED.md "Benchmark").
- A Redis Cluster: `fyp.serving.cluster_reads.read_by_node`, a GET per key and every command grouped by the
  primary of its slot, all nodes written before any is read. No multi-key command crosses slots.
- Anything else with `pipeline()` (the unit tests' plain-data Redis): its pipeline, `execute_command` per command.

A connection whose read failed half way is disconnected, not returned to the pool with unread replies on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import redis

from fyp.serving.cluster_reads import is_cluster, read_by_node, read_replies

__all__ = ["Command", "read"]

Command = tuple[Any, ...]  # (NAME, key, *args)


def pack(command: Command) -> bytes:
    """`command` as a RESP array of bulk strings. The name and the arguments after the key repeat across the ~500
    HMGETs of a read, so their encodings are cached: packing each argument anew was the read's largest cost.

    >>> pack(("HMGET", "k", "a"))
    b'*3\\r\\n$5\\r\\nHMGET\\r\\n$1\\r\\nk\\r\\n$1\\r\\na\\r\\n'
    """
    key = command[1] if isinstance(command[1], bytes) else str(command[1]).encode()
    return _head(command[0], len(command)) + b"$%d\r\n%s\r\n" % (len(key), key) + _tail(tuple(command[2:]))


@lru_cache(maxsize=64)
def _head(name: str, count: int) -> bytes:
    return b"*%d\r\n" % count + _bulk((name,))


@lru_cache(maxsize=64)
def _tail(args: tuple[Any, ...]) -> bytes:
    return _bulk(args)


def _bulk(args: Sequence[Any]) -> bytes:
    parts = []
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def read(client: Any, keys: Sequence[str], commands: Sequence[Command] = ()) -> list[Any]:
    """GET of every key, then every command's reply, in one round trip (module docstring)."""
    if is_cluster(client):
        return read_by_node(client, keys, commands)
    if isinstance(client, redis.Redis):
        return _read_single(client, keys, commands)
    pipe = client.pipeline(transaction=False)
    if keys:
        pipe.execute_command("MGET", *keys)
    for command in commands:
        pipe.execute_command(*command)
    replies = pipe.execute()
    return [*(replies[0] if keys else ()), *replies[1 if keys else 0:]]


def _read_single(client: redis.Redis, keys: Sequence[str], commands: Sequence[Command]) -> list[Any]:
    # The MGET's keys differ on every read: packed without the cache.
    packed = [b"*%d\r\n" % (len(keys) + 1) + _bulk(("MGET", *keys))] if keys else []
    packed.extend([pack(command) for command in commands])
    count = len(packed)
    pool = client.connection_pool
    connection = pool.get_connection()
    failed = True
    try:
        connection.send_packed_command([b"".join(packed)], check_health=False)  # one sendall
        replies = read_replies(connection._sock, count)
        failed = False
    finally:
        if failed:
            connection.disconnect()
        pool.release(connection)
    return [*(replies[0] if keys else ()), *replies[1 if keys else 0:]]
