"""What one index service is: its name, dimension, model, replica id, snapshot cadence and port."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

from fyp.index.scann_index import ScannParams
from schemas.topics import VIDEO_EMBEDDINGS

__all__ = ["DEFAULT_PORT", "ServiceConfig", "default_port"]

DEFAULT_PORT = 8090


def default_port() -> int:
    """FYP_INDEX_PORT, else 8090 shifted by FYP_PORT_OFFSET (like every port of the local stack)."""
    return int(os.environ.get("FYP_INDEX_PORT", DEFAULT_PORT + int(os.environ.get("FYP_PORT_OFFSET", "0"))))


def _default_replica() -> str:
    return os.environ.get("FYP_INDEX_REPLICA") or f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True, kw_only=True)
class ServiceConfig:
    """One index service.

    name: the index's name; snapshots live under index-snapshots/{name}/.
    dim: vector dimension (a restored snapshot's dimension wins); records of another width are rejected.
    model: the embedding model the index serves: it takes only that model's vectors and answers only that
    model's user embeddings. None: the model of the restored snapshot, else the newest trained model
    (`fyp.embeddings.store.current_model_name`), resolved once at start-up. `fyp index reembed` moves a running
    service to another model (docs/INDEX.md, "Changing the model").
    replica_id: makes the consumer group id unique per replica.
    snapshot_every_s: seconds between snapshots (0: only on POST /v1/snapshot); keep_snapshots: how many stay.
    restore: start from the latest snapshot (else replay the whole topic).
    max_k: the largest k a request may ask for (and how many candidates a source may fetch).

    >>> ServiceConfig(name="videos", replica_id="r1").group_id
    'fyp-index-videos-r1'
    """

    name: str = "videos"
    dim: int = 64
    model: str | None = None
    topic: str = VIDEO_EMBEDDINGS.name
    replica_id: str = field(default_factory=_default_replica)
    snapshot_every_s: float = 300.0
    keep_snapshots: int = 3
    restore: bool = True
    max_k: int = 1000
    params: ScannParams = field(default_factory=ScannParams)

    def __post_init__(self) -> None:
        if self.dim < 1 or self.max_k < 1 or self.keep_snapshots < 1 or self.snapshot_every_s < 0:
            raise ValueError("dim, max_k, keep_snapshots must be >= 1 and snapshot_every_s >= 0")

    @property
    def group_id(self) -> str:
        return f"fyp-index-{self.name}-{self.replica_id}"
