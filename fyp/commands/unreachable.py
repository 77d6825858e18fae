"""Say which local service a command could not reach, and what to do about it.

Each client library words a refused connection its own way (redis-py "Error 111 connecting to …", httpx a bare
"[Errno 111]", requests a urllib3 pool message over four lines) and some paths print a traceback. A data engineer
who ran a command with the stack down needs one line: which service, at which address, and `fyp up`.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
import redis

from fyp.config import load_settings

__all__ = ["is_unreachable", "unreachable_message"]

_HINT = "is the local stack up? `fyp status` shows each service, `fyp up` starts them"
# requests and botocore are matched by name: importing them here would slow every command's start.
_NAMED = {("requests.exceptions", "ConnectionError"), ("requests.exceptions", "ConnectTimeout"),
          ("botocore.exceptions", "EndpointConnectionError")}
_TYPED = (redis.exceptions.ConnectionError, httpx.ConnectError, httpx.ConnectTimeout, ConnectionRefusedError)
_HOST_PORT = re.compile(r"host='?([\w.-]+)'?, port=(\d+)|(?:to |//)([\w.-]+):(\d+)")


def is_unreachable(exc: BaseException) -> bool:
    """True for a connection that could not be opened (refused, timed out connecting, unknown host)."""
    return isinstance(exc, _TYPED) or any(
        (cls.__module__, cls.__name__) in _NAMED for cls in type(exc).__mro__)


def _url(exc: BaseException) -> str | None:
    """The URL the failed call was for: httpx and requests keep the request, botocore the endpoint."""
    try:
        request = getattr(exc, "request", None)
    except RuntimeError:  # httpx's property, on an error raised without a request
        request = None
    url = getattr(request, "url", None) or getattr(exc, "kwargs", {}).get("endpoint_url")
    return str(url) if url else None


def _address(exc: BaseException) -> tuple[str, int] | None:
    url = _url(exc)
    if url:
        parts = urlsplit(url)
        if parts.hostname and parts.port:
            return parts.hostname, parts.port
    match = _HOST_PORT.search(str(exc))
    if match:
        host, port = (match.group(1), match.group(2)) if match.group(1) else (match.group(3), match.group(4))
        return host, int(port)
    return None


def _service_names() -> dict[int, str]:
    try:
        settings = load_settings()
    except (OSError, ValueError):  # no usable settings: fall back to the bare address
        return {}
    from fyp.index.config import default_port  # the index service is started apart from the stack

    return {
        settings.redis_port: "Redis",
        settings.kafka_port: "Kafka",
        settings.s3_port: "the S3 store (SeaweedFS)",
        settings.iceberg_rest_port: "the Iceberg REST catalog (SeaweedFS)",
        settings.flink_rest_port: "the Flink JobManager",
        default_port(): "the index service (`fyp serve index`)",
    }


def unreachable_message(exc: BaseException) -> str | None:
    """One line naming the service `exc` could not reach, with a hint; None if `exc` is another error."""
    if not is_unreachable(exc):
        return None
    address = _address(exc)
    if address is None:
        return f"a service could not be reached ({exc}); {_HINT}"
    host, port = address
    name = _service_names().get(port, "the service")
    return f"{name} at {host}:{port} is not reachable; {_HINT}"
