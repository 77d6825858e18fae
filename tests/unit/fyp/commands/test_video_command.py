"""`fyp video`'s index status against a real HTTP server that answers like the index service."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator

import pytest

from fyp.uploads.follow import index_status


class _Index(http.server.BaseHTTPRequestHandler):
    """GET /v1/similar/{id}: 200 for v-in (and for 'a/b', percent-encoded), 404 otherwise; 503 for v-slow."""

    def do_GET(self) -> None:  # the stdlib names it
        path = self.path.split("?")[0]
        status = {"/v1/similar/v-in": 200, "/v1/similar/a%2Fb": 200, "/v1/similar/v-slow": 503}.get(path, 404)
        body = b'{"results": []}' if status == 200 else b'{"detail": "no"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture(scope="module")
def index_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Index)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize(("video_id", "state"),
                         [("v-in", "indexed"), ("a/b", "indexed"), ("v-out", "not_indexed"), ("v-slow", "unknown")])
def test_index_status(index_url: str, video_id: str, state: str) -> None:
    assert index_status(video_id, index_url)["state"] == state


def test_no_index_service_is_unknown_not_an_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    status = index_status("v-in", f"http://127.0.0.1:{port}", timeout_s=1)
    assert status["state"] == "unknown" and "unreachable" in status["detail"]
