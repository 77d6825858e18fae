"""`FeedClient`: the feed service over HTTP, for the CLI, the benchmark and other services.

>>> client = FeedClient("http://127.0.0.1:8095")        # doctest: +SKIP
>>> [item["video_id"] for item in client.feed("u1", n=10)["items"]]  # doctest: +SKIP
['v7', 'v3', ...]
"""

from __future__ import annotations

from typing import Any

import httpx

__all__ = ["FeedClient", "FeedError"]


class FeedError(RuntimeError):
    """The service answered with an error: `status` is the HTTP status (0: not reachable)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}" if status else detail)
        self.status = status
        self.detail = detail


class FeedClient:
    """One pooled HTTP connection set to the feed service; thread-safe (httpx.Client is). timeout_s: per request."""

    def __init__(self, base_url: str, *, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout_s)

    def _call(self, method: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, params=params)
        except httpx.HTTPError as exc:
            raise FeedError(0, f"feed service not reachable at {self.base_url} ({exc}); start it with "
                               "`fyp serve feed`") from exc
        if response.status_code != 200:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise FeedError(response.status_code, str(detail))
        return response.json()

    def feed(self, user_id: str, *, n: int = 10, explain: bool = False, at_ms: int | None = None) -> dict[str, Any]:
        """The service's `/v1/feed` body for the user; explain and at_ms (debug: features as of that epoch ms) as
        the service documents them (fyp/feed/service.py)."""
        params: dict[str, Any] = {"user": user_id, "n": n}
        if explain:
            params["explain"] = "true"
        if at_ms is not None:
            params["at_ms"] = at_ms
        return self._call("GET", "/v1/feed", params)

    def model(self) -> dict[str, Any]:
        return self._call("GET", "/v1/model", {})

    def reload(self, version: str | None = None) -> dict[str, Any]:
        """Load `version` ("latest" or a name; default: the one the service wants) now."""
        return self._call("POST", "/v1/model/reload", {"version": version} if version else {})

    def close(self) -> None:
        self._http.close()
