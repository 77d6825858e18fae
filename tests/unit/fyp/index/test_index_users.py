"""User embeddings read from Redis: raw little-endian float32, absent, or not whole floats."""

from __future__ import annotations

import numpy as np
import pytest

from fyp.index.users import USER_EMBEDDING_KEY, RedisUserEmbeddings


def test_redis_user_embeddings_read_float32_bytes():
    class FakeRedis:
        def __init__(self, data):
            self.data = data

        def get(self, key):
            return self.data.get(key)

    raw = np.arange(4, dtype="<f4").tobytes()
    users = RedisUserEmbeddings(FakeRedis({"fyp:user_embedding:v1:u1": raw, "fyp:user_embedding:v1:u2": b"abc"}))
    assert users.get("u1").tolist() == [0, 1, 2, 3]
    assert users.get("u0") is None
    with pytest.raises(ValueError, match="3 bytes"):
        users.get("u2")


def test_the_key_names_the_user():
    assert USER_EMBEDDING_KEY.format(user_id="u1") == "fyp:user_embedding:v1:u1"
