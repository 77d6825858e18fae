"""The feed's fine ranker: one loaded version at a time, swapped whole.

A `LoadedRanker` is immutable (version, ONNX Runtime session, input spec). `RankerSlot.current` is one attribute
read, so a request that takes it at its start scores every candidate with that one version, even if a reload
swaps in another while it runs; the old session lives until its last request drops it. Loading happens off to
the side (the ONNX session is built before the swap), so requests never wait for a load.

Which version: `wanted` (a version name, or "latest": the store's LATEST). `reload()` (the service's
`POST /v1/model/reload`, and its periodic check every `check_every_s`) loads the wanted version if it differs
from the one served; a failed load keeps the served one and says why.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from fyp.ranking.inputs import InputSpec
from fyp.ranking.runtime import RankerRuntime
from fyp.ranking.store import S3_PREFIX, ObjectStore, latest_version, load_version

__all__ = ["LoadedRanker", "RankerSlot"]

log = logging.getLogger("fyp.feed.model")


@dataclass(frozen=True, kw_only=True)
class LoadedRanker:
    version: str
    runtime: RankerRuntime

    @property
    def set_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.runtime.spec.sets)


class RankerSlot:
    """The ranker a feed serves. store: where versions live (None: no model, the documented fallback);
    wanted: "latest" or a version name; prefix: the store prefix (tests use their own)."""

    def __init__(self, store: ObjectStore | None, *, wanted: str = "latest", prefix: str = S3_PREFIX) -> None:
        self.store = store
        self.wanted = wanted
        self.prefix = prefix
        self.current: LoadedRanker | None = None
        self.error: str | None = "no model store configured" if store is None else None
        self.loads = 0
        self._reload_lock = threading.Lock()  # one load at a time; requests never take it

    def reload(self, wanted: str | None = None) -> dict[str, Any]:
        """Load `wanted` (default: the slot's) if it is not the version served; what happened, as JSON."""
        with self._reload_lock:
            if wanted is not None:
                self.wanted = wanted
            if self.store is None:
                return self.status()
            served = self.current.version if self.current else None
            try:
                version = latest_version(self.store, prefix=self.prefix) if self.wanted == "latest" else self.wanted
                if version != served:
                    onnx, card = load_version(self.store, version, prefix=self.prefix)
                    loaded = LoadedRanker(version=version,
                                          runtime=RankerRuntime(onnx, InputSpec.from_json(card["spec"])))
                    self.current = loaded  # the swap: one assignment
                    self.loads += 1
                    log.info("ranker %s loaded (was %s)", version, served)
                self.error = None
            except Exception as exc:  # any failed load (S3 down, a bad file) keeps the served version
                self.error = f"{type(exc).__name__}: {exc}"
                log.warning("ranker %s not loaded, keeping %s: %s", self.wanted, served, self.error)
            return self.status()

    def status(self) -> dict[str, Any]:
        current = self.current
        return {"version": current.version if current else None, "wanted": self.wanted, "loads": self.loads,
                "error": self.error}

    def watch(self, every_s: float, stop: threading.Event) -> threading.Thread:
        """Call `reload()` every `every_s` seconds until `stop` is set (a daemon thread)."""
        def loop() -> None:
            while not stop.wait(every_s):
                try:
                    self.reload()
                except Exception:  # keep checking: one bad poll must not end the thread
                    log.exception("ranker reload failed")

        thread = threading.Thread(target=loop, name="ranker-reload", daemon=True)
        thread.start()
        return thread
