"""Plain data for the index service's unit tests: encoded VideoEmbedding records and distinct test vectors."""

from __future__ import annotations

import uuid

import numpy as np

from schemas.registry import default_registry

DIM = 8


def embedding(video_id: str, vector=None, *, deleted: bool = False, model: str = "clip-v1") -> bytes:
    return default_registry().encode(
        "VideoEmbedding",
        {
            "event_id": str(uuid.uuid4()),
            "event_time": 1_700_000_000_000,
            "video_id": video_id,
            "author_id": "a1",
            "model": model,
            "vector": [] if vector is None else [float(x) for x in vector],
            "deleted": deleted,
        },
    )


def unit(i: int) -> np.ndarray:
    v = np.full(DIM, 0.05, np.float32)
    v[i % DIM] = 1.0
    return v
