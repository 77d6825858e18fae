"""The feed's fine ranker: one loaded version at a time, swapped whole.

A `LoadedRanker` is immutable (version, ONNX Runtime session, input spec). `RankerSlot.current` is one attribute
read, so a request that takes it at its start scores every candidate with that one version, even if a reload
swaps in another while it runs; the old session lives until its last request drops it. Loading happens off to
the side (the ONNX session is built before the swap), so requests never wait for a load.

Which version: `wanted` (a version name, or "latest": the store's LATEST). `reload()` (the service's
`POST /v1/model/reload`, and its periodic check every `check_every_s`) loads the wanted version if it differs
from the one served; a failed load keeps the served one and says why.

**Per-arm versions.** An experiment arm's `ranker.model = VERSION` scores that arm's users with VERSION. The
slot keeps such pinned versions beside the default one, at most `max_pinned` (4: each is an ONNX session in
memory), loaded off the request path: `pin()` (the feed service pins every declared arm's version at start) and
each `reload()` load the pinned versions not loaded yet, so a failed one is tried again on the next check.
`pinned(version)` answers the loaded version, or None with the reason (not loaded yet, or the load error); the
feed then scores with the default model and says so (`model.arm_fallback`). A version asked for that is not
pinned is loaded in the background once, if there is room.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fyp.ranking.inputs import InputSpec
from fyp.ranking.runtime import RankerRuntime
from fyp.ranking.store import S3_PREFIX, ObjectStore, check_version, latest_version, load_version

__all__ = ["MAX_PINNED", "LoadedRanker", "RankerSlot"]

MAX_PINNED = 4

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

    def __init__(self, store: ObjectStore | None, *, wanted: str = "latest", prefix: str = S3_PREFIX,
                 max_pinned: int = MAX_PINNED) -> None:
        self.store = store
        self.max_pinned = max_pinned
        self._pinned: dict[str, LoadedRanker | None] = {}  # version -> loaded, or None until it is
        self._pin_errors: dict[str, str] = {}
        self._pin_lock = threading.Lock()  # one pinned load at a time; requests only read the dicts
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
                    self.current = self._load(version)  # the swap: one assignment
                    self.loads += 1
                    log.info("ranker %s loaded (was %s)", version, served)
                self.error = None
            except Exception as exc:  # any failed load (S3 down, a bad file) keeps the served version
                self.error = f"{type(exc).__name__}: {exc}"
                log.warning("ranker %s not loaded, keeping %s: %s", self.wanted, served, self.error)
        self.load_pinned()
        return self.status()

    def _load(self, version: str) -> LoadedRanker:
        if self.store is None:
            raise RuntimeError("no model store configured")
        onnx, card = load_version(self.store, version, prefix=self.prefix)
        return LoadedRanker(version=version, runtime=RankerRuntime(onnx, InputSpec.from_json(card["spec"])))

    def pin(self, versions: Iterable[str]) -> None:
        """Keep `versions` loaded beside the default one (module docstring); ValueError past `max_pinned`."""
        versions = list(versions)
        for version in versions:
            if not isinstance(version, str):
                raise ValueError(f"ranker.model must be a version name, got {version!r}")
            check_version(version)
        with self._pin_lock:
            wanted = [v for v in dict.fromkeys(versions) if v not in self._pinned]
            if len(self._pinned) + len(wanted) > self.max_pinned:
                raise ValueError(f"{len(self._pinned) + len(wanted)} pinned ranker versions, at most "
                                 f"{self.max_pinned} (each is a model in memory)")
            for version in wanted:
                self._pinned[version] = None
        self.load_pinned()

    def load_pinned(self) -> None:
        """Load every pinned version not loaded yet; a failure is kept as that version's error, tried next time."""
        with self._pin_lock:
            for version in [v for v, loaded in self._pinned.items() if loaded is None]:
                try:
                    self._pinned[version] = self._load(version)
                    self._pin_errors.pop(version, None)
                    log.info("pinned ranker %s loaded", version)
                except Exception as exc:  # the arm falls back to the default model meanwhile
                    self._pin_errors[version] = f"{type(exc).__name__}: {exc}"
                    log.warning("pinned ranker %s not loaded: %s", version, self._pin_errors[version])

    def pinned(self, version: str) -> tuple[LoadedRanker | None, str | None]:
        """(the loaded version, None), or (None, why not). An unknown version is pinned in the background when
        there is room, so a later request gets it."""
        loaded = self._pinned.get(version)
        if loaded is not None:
            return loaded, None
        if version not in self._pinned:
            try:
                check_version(version)
            except ValueError as exc:
                return None, str(exc)
            if len(self._pinned) >= self.max_pinned:
                return None, f"not pinned, and {self.max_pinned} versions already are"
            threading.Thread(target=self._pin_quietly, args=(version,), name="ranker-pin", daemon=True).start()
            return None, "loading"
        return None, self._pin_errors.get(version, "loading")

    def _pin_quietly(self, version: str) -> None:
        try:
            self.pin([version])
        except ValueError as exc:  # another request filled the room first
            self._pin_errors[version] = str(exc)

    def status(self) -> dict[str, Any]:
        current = self.current
        return {"version": current.version if current else None, "wanted": self.wanted, "loads": self.loads,
                "error": self.error,
                "pinned": {v: {"loaded": loaded is not None, "error": self._pin_errors.get(v)}
                           for v, loaded in list(self._pinned.items())}}

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
