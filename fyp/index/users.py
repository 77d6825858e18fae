"""User embeddings, the query of ANN candidates: the store protocol and its Redis reader.

The value under `fyp:user_embedding:v1:{user_id}` is `dim` float32, little-endian, with no header
(`vector.astype("<f4").tobytes()`); `fyp worker user-embeddings` writes it, the index service only reads.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

__all__ = ["USER_EMBEDDING_KEY", "RedisUserEmbeddings", "UserEmbeddings"]

USER_EMBEDDING_KEY = "fyp:user_embedding:v1:{user_id}"  # value: dim float32, little-endian, no header


class UserEmbeddings(Protocol):
    """Where the HTTP layer gets a user's embedding: None when the user has none."""

    def get(self, user_id: str) -> np.ndarray | None: ...


class RedisUserEmbeddings:
    """User embeddings stored as raw little-endian float32 under `fyp:user_embedding:v1:{user_id}`."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def get(self, user_id: str) -> np.ndarray | None:
        raw = self._client.get(USER_EMBEDDING_KEY.format(user_id=user_id))
        if raw is None:
            return None
        if len(raw) % 4:
            raise ValueError(f"user embedding of {user_id} is {len(raw)} bytes, not whole float32s")
        return np.frombuffer(raw, dtype="<f4")
