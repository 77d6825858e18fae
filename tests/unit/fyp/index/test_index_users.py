"""User embeddings in Redis: the codec (model name, then little-endian float32), absent, or not of the layout."""

from __future__ import annotations

import numpy as np
import pytest

from fyp.index.users import (
    USER_EMBEDDING_KEY,
    RedisUserEmbeddings,
    UserEmbedding,
    decode_user_embedding,
    encode_user_embedding,
)
from tests.unit.fyp.feed.test_feed_assembly import DictRedis


def test_the_value_names_its_model_and_round_trips():
    raw = encode_user_embedding("two-tower-20261124T161500Z-1a2b3c4d", np.arange(4, dtype=np.float64))
    assert raw[0] == 35 and raw[1:36] == b"two-tower-20261124T161500Z-1a2b3c4d" and len(raw) == 36 + 16
    decoded = decode_user_embedding(raw)
    assert decoded.model == "two-tower-20261124T161500Z-1a2b3c4d"
    assert decoded.vector.dtype == np.dtype("<f4") and decoded.vector.tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize(("raw", "message"), [
    (b"", "empty"),
    (b"\x00" + b"\x00" * 8, "not a model name"),  # no model name
    (b"\x05ab", "not a model name"),  # shorter than its name
    (b"\x01m" + b"\x00" * 3, "not a model name"),  # not whole float32s
    (b"\x01\xff" + b"\x00" * 4, "UTF-8"),
    (np.arange(4, dtype="<f4").tobytes()[:1] + b"\x00" * 15, "not a model name"),  # a v1 value (vector only)
])
def test_values_of_another_layout_are_refused(raw, message):
    with pytest.raises(ValueError, match=message):
        decode_user_embedding(raw)


@pytest.mark.parametrize("model", ["", "m" * 256])
def test_model_names_must_fit_the_length_byte(model):
    with pytest.raises(ValueError, match=r"1\.\.255 bytes"):
        encode_user_embedding(model, np.ones(2))


def test_redis_user_embeddings_read_the_codec():
    redis = DictRedis()
    redis.strings.update({
        "fyp:user_embedding:v2:u1": encode_user_embedding("m1", np.arange(4, dtype="<f4")),
        "fyp:user_embedding:v2:u2": b"\x01m" + b"abc",
    })
    users = RedisUserEmbeddings(redis)
    found = users.get("u1")
    assert isinstance(found, UserEmbedding) and found.model == "m1" and found.vector.tolist() == [0, 1, 2, 3]
    assert users.get("u0") is None
    with pytest.raises(ValueError, match="user embedding of u2"):
        users.get("u2")


def test_the_key_names_the_user_and_the_layout_version():
    assert USER_EMBEDDING_KEY.format(user_id="u1") == "fyp:user_embedding:v2:u1"
