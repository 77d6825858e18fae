"""`create_app(concurrency=N)` (fyp/feed/service.py): at most N feeds are assembled at once in one process, the
others wait their turn and are all answered."""

from __future__ import annotations

import threading
import time

import anyio
import httpx
import pytest

from fyp.feed.model import RankerSlot
from fyp.feed.service import create_app


class SlowRanker:
    """A ranker whose feed takes 30 ms and notes how many feeds ran at once."""

    def __init__(self) -> None:
        self.slot = RankerSlot(None)
        self.running = self.most = 0
        self._lock = threading.Lock()

    def feed(self, user_id: str, n: int, *, now_ms: int | None = None, explain: bool = False) -> dict:
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.03)
        with self._lock:
            self.running -= 1
        return {"user": user_id, "items": []}


def most_at_once(concurrency: int, requests: int = 8) -> int:
    ranker = SlowRanker()
    app = create_app(ranker, concurrency=concurrency)  # type: ignore[arg-type]

    async def main() -> list[int]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://feed") as client:
            statuses: list[int] = []

            async def one(i: int) -> None:
                statuses.append((await client.get("/v1/feed", params={"user": f"u{i}"})).status_code)

            async with anyio.create_task_group() as group:
                for i in range(requests):
                    group.start_soon(one, i)
            return statuses

    assert anyio.run(main) == [200] * requests  # every request answered, none refused
    return ranker.most


def test_at_most_concurrency_feeds_run_at_once():
    assert most_at_once(2) == 2
    assert most_at_once(1) == 1
    assert most_at_once(8) > 2  # the limit, not the test's client, is what held the others back


def test_a_concurrency_below_one_is_refused():
    with pytest.raises(ValueError, match="concurrency"):
        create_app(SlowRanker(), concurrency=0)  # type: ignore[arg-type]
