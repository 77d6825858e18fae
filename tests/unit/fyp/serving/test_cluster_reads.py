"""The cluster fast path's wire format: requests packed by hand, replies parsed per node (no server needed; the
real cluster: tests/integration/test_redis_cluster.py)."""

from __future__ import annotations

import socket

import hiredis
import pytest
from redis.exceptions import ResponseError

from fyp.serving.cluster_reads import _GET, _pack, read_replies


def test_packed_requests_are_what_redis_py_sends():
    from redis.connection import PythonRespSerializer

    serializer = PythonRespSerializer(buffer_cutoff=6000, encode=lambda v: v if isinstance(v, bytes) else
                                      str(v).encode())
    expected = b"".join(serializer.pack("ZRANGE", "fyp:seen:u1", 0, -1))
    assert _pack(("ZRANGE", "fyp:seen:u1", 0, -1)) == expected
    key = b"fyp:video_engagement:v1:v7"
    assert _GET % (len(key), key) == b"".join(serializer.pack("GET", key))


def test_replies_are_read_until_the_count_and_an_error_reply_raises():
    ours, server = socket.socketpair()
    with ours, server:
        server.sendall(b"$3\r\nabc\r\n$-1\r\n*2\r\n$1\r\nq\r\n$1\r\nr\r\n")
        assert read_replies(ours, 3) == [b"abc", None, [b"q", b"r"]]
        server.sendall(b"-MOVED 3999 127.0.0.1:7001\r\n")
        with pytest.raises(ResponseError, match="MOVED 3999"):
            read_replies(ours, 1)
    assert hiredis.Reader  # the parser the fast path relies on is installed (redis[hiredis])


def test_an_error_reply_raises_only_after_every_reply_was_read():
    ours, server = socket.socketpair()
    with ours, server:
        server.sendall(b"-WRONGTYPE not a hash\r\n$1\r\nx\r\n")
        with pytest.raises(ResponseError, match="WRONGTYPE"):
            read_replies(ours, 2)
        ours.setblocking(False)
        with pytest.raises(BlockingIOError):  # nothing of this request is left on the connection
            ours.recv(1)
