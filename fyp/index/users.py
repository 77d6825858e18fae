"""User embeddings, the query of ANN candidates: their one codec, the store protocol and its Redis reader.

The value under `fyp:user_embedding:v2:{user_id}` says which model made the vector, so the index service can
refuse a query of another model (its vectors live in another space):

    offset 0        1 byte     n: length of the model name in bytes (1..255)
    offset 1        n bytes    the model name, UTF-8 (`fyp.embeddings.store.model_name`, or the fallback's)
    offset 1 + n    4 * dim    the vector, float32 little-endian

`fyp worker user-embeddings` writes it with `encode_user_embedding`; the index service reads it with
`decode_user_embedding`. The service publishes the model it serves under `fyp:index_model:v1:{index name}`
(`SERVED_MODEL_KEY`, a plain string, no TTL), so that the worker encodes users with the model the index serves,
and moves to a new one right after a swap. The v1 layout (the vector alone) carried no model, hence the new
key version; v1 keys are never read and expire within their 24 h TTL.

>>> raw = encode_user_embedding("two-tower-x", np.array([1.0, 2.0], np.float32))
>>> raw[:12], decode_user_embedding(raw)
(b'\\x0btwo-tower-x', UserEmbedding(model='two-tower-x', vector=array([1., 2.], dtype=float32)))
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import numpy as np

from fyp.serving.roundtrip import read

__all__ = [
    "SERVED_MODEL_KEY",
    "USER_EMBEDDING_KEY",
    "RedisUserEmbeddings",
    "UserEmbedding",
    "UserEmbeddings",
    "decode_user_embedding",
    "encode_user_embedding",
    "no_embedding",
]

USER_EMBEDDING_KEY = "fyp:user_embedding:v2:{user_id}"  # value: see the module docstring
SERVED_MODEL_KEY = "fyp:index_model:v1:{name}"  # value: the model id the index service `name` serves
_MAX_MODEL_BYTES = 255


def no_embedding(user_id: str) -> str:
    """Why a user has no ANN candidates: the index service's 404, and the feed's `ann` error for a user it did
    not ask the index about (fyp/feed/candidates.py)."""
    return f"no embedding for user {user_id!r} (Redis key {USER_EMBEDDING_KEY.format(user_id=user_id)} is absent)"


class UserEmbedding(NamedTuple):
    """A user's vector and the model that made it."""

    model: str
    vector: np.ndarray  # (dim,) float32


def encode_user_embedding(model: str, vector: np.ndarray) -> bytes:
    """The stored value: model name, then the vector as little-endian float32."""
    name = model.encode("utf-8")
    if not 1 <= len(name) <= _MAX_MODEL_BYTES:
        raise ValueError(f"a model name takes 1..{_MAX_MODEL_BYTES} bytes, got {len(name)}")
    return bytes([len(name)]) + name + np.asarray(vector, dtype="<f4").tobytes()


def decode_user_embedding(raw: bytes) -> UserEmbedding:
    """The stored value back; ValueError when it is not of this layout."""
    if not raw:
        raise ValueError("an empty user embedding value")
    n = raw[0]
    body = raw[1 + n:]
    if n == 0 or len(raw) < 1 + n or len(body) % 4:
        raise ValueError(f"a user embedding value of {len(raw)} bytes is not a model name and whole float32s")
    try:
        model = raw[1:1 + n].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError("the model name of a user embedding is not UTF-8") from exc
    return UserEmbedding(model, np.frombuffer(body, dtype="<f4"))


class UserEmbeddings(Protocol):
    """Where the HTTP layer gets a user's embedding: None when the user has none."""

    def get(self, user_id: str) -> UserEmbedding | None: ...


class RedisUserEmbeddings:
    """User embeddings stored under `fyp:user_embedding:v2:{user_id}` (`client`: a redis.Redis)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def get(self, user_id: str) -> UserEmbedding | None:
        # One GET per feed: redis-py's own `get` (its packing, pool health check and response callbacks) cost the
        # feed about as much CPU as the hand-packed round trip of hundreds of reads (py-spy, docs/FEED.md "Fewer
        # GIL hand-overs").
        raw = read(self._client, [USER_EMBEDDING_KEY.format(user_id=user_id)])[0]
        if raw is None:
            return None
        try:
            return decode_user_embedding(raw)
        except ValueError as exc:
            raise ValueError(f"user embedding of {user_id}: {exc}") from exc
