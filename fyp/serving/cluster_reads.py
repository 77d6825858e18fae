"""Many single-key reads on a Redis Cluster in one round trip per node, all nodes at once.

A multi-key MGET must stay in one hash slot, and 500 candidate keys fall in ~500 slots: so every key is its own
GET, grouped by the primary that holds its slot (the client's slot map). Each node's commands go out as one
packed write on one connection; all nodes are written to before any reply is read, so the nodes work in
parallel without threads (a thread pool was not tried: the replies would still be parsed one node after
another under the GIL).

A MOVED/ASK reply (slots migrating), a node that is down or a stale slot map makes the whole read go again
through redis-py's cluster pipeline, which follows redirects, refreshes the slot map and retries; the
connections of the failed attempt are dropped, as their unread replies would otherwise reach the next read.
"""

from __future__ import annotations

import threading
from binascii import crc_hqx
from collections.abc import Sequence
from typing import Any

import hiredis
from redis.cluster import RedisCluster
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot
from redis.exceptions import ConnectionError, RedisError, ResponseError

__all__ = ["NodeReader", "is_cluster", "mget", "read_by_node", "read_replies"]

Command = tuple[Any, ...]  # (NAME, key, *args) of a read on one key


def is_cluster(client: Any) -> bool:
    return isinstance(client, RedisCluster)


def mget(client: Any, keys: Sequence[str]) -> list[Any]:
    """MGET's answer on either kind of client: one MGET on a single Redis, `read_by_node` on a cluster."""
    return read_by_node(client, keys) if is_cluster(client) else client.mget(keys)


def read_by_node(client: RedisCluster, keys: Sequence[str], extra: Sequence[Command] = ()) -> list[Any]:
    """GET of every key, then the reply of every `extra` command (single-key reads such as ("ZRANGE", key, 0,
    -1), the key second), in the order given; on connections from the client's pools."""
    return NodeReader(client, dedicated=False).read(keys, extra)


class NodeReader:
    """`read_by_node` for a long-lived reader (FeatureClient): with `dedicated`, one connection per node kept
    between reads and guarded by a lock, as redis-py's `single_connection_client` does on one Redis; a pool's
    checkout and release with its liveness poll cost ~15 µs a node, a tenth of a single-entity read."""

    def __init__(self, client: RedisCluster, *, dedicated: bool = True) -> None:
        self.client = client
        self.dedicated = dedicated
        self._connections: dict[str, Any] = {}
        self._lock = threading.Lock()

    def read(self, keys: Sequence[str], extra: Sequence[Command] = ()) -> list[Any]:
        try:
            if not self.dedicated:
                return self._read_direct(keys, extra)
            with self._lock:
                return self._read_direct(keys, extra)
        except (RedisError, OSError, IndexError, AttributeError):
            return _read_pipelined(self.client, [*(("GET", k) for k in keys), *extra])

    def _read_direct(self, keys: Sequence[str], extra: Sequence[Command]) -> list[Any]:
        """The fast path: requests packed by hand (RESP), replies parsed by one hiredis Reader per node. With
        redis-py's per-command pack and read_response, 1 user + 500 videos took 5.8 ms instead of 3.1 ms."""
        slots = self.client.nodes_manager.slots_cache
        groups: dict[str, tuple[Any, list[int], list[bytes]]] = {}
        packed_extra = [_pack(command) for command in extra]
        for i, key in enumerate([*keys, *(command[1] for command in extra)]):
            encoded = key if isinstance(key, bytes) else key.encode()
            slot = key_slot(encoded) if b"{" in encoded else crc_hqx(encoded, 0) % REDIS_CLUSTER_HASH_SLOTS
            node = slots[slot][0]  # the slot's primary
            group = groups.get(node.name)
            if group is None:
                group = groups[node.name] = (node, [], [])
            group[1].append(i)
            group[2].append(_GET % (len(encoded), encoded) if i < len(keys) else packed_extra[i - len(keys)])
        replies: list[Any] = [None] * (len(keys) + len(extra))
        taken = []
        failed = True
        try:
            for node, _, packed in groups.values():
                connection = self._take(node)
                taken.append((node, connection))
                connection._sock.sendall(b"".join(packed))  # every node gets its request before a reply is read
            for (_, connection), (_, indexes, _) in zip(taken, groups.values(), strict=True):
                for i, reply in zip(indexes, read_replies(connection._sock, len(indexes)), strict=True):
                    replies[i] = reply
            failed = False
        finally:
            for node, connection in taken:
                self._give_back(node, connection, failed)
        return replies

    def _take(self, node) -> Any:
        pool = self.client.get_redis_connection(node).connection_pool
        if not self.dedicated:
            return pool.get_connection()
        connection = self._connections.get(node.name)
        if connection is None:
            connection = pool.make_connection()
            connection.connect()
            self._connections[node.name] = connection
        return connection

    def _give_back(self, node, connection, failed: bool) -> None:
        if failed:  # its unread replies would reach the next read on it
            connection.disconnect()
            self._connections.pop(node.name, None)
        if not self.dedicated:
            self.client.get_redis_connection(node).connection_pool.release(connection)


_GET = b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n"


def _pack(command: Command) -> bytes:
    parts = [b"*%d\r\n" % len(command)]
    for arg in command:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def read_replies(sock: Any, count: int) -> list[Any]:
    """`count` replies from `sock`, parsed by one hiredis Reader; an error reply (MOVED, ASK, CLUSTERDOWN, WRONGTYPE
    ...) raises ResponseError once all `count` were read, so a pooled connection is never left with unread replies."""
    reader = hiredis.Reader()
    found: list[Any] = []
    while len(found) < count:
        data = sock.recv(1 << 17)
        if not data:
            raise ConnectionError("Redis closed the connection")
        reader.feed(data)
        while (reply := reader.gets()) is not False:
            found.append(reply)
    for reply in found:
        if isinstance(reply, hiredis.ReplyError):
            raise ResponseError(str(reply))
    return found


def _read_pipelined(client: RedisCluster, commands: Sequence[Command]) -> list[Any]:
    pipe = client.pipeline()
    for command in commands:
        pipe.execute_command(*command)
    return pipe.execute()
