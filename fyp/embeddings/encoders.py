"""The encoders other components call: videos -> item vectors, users -> user vectors, both (n, 64) float32
with unit rows (dot product = cosine), in the space the index service searches.

    items, users = load_encoders()                 # the latest trained model, else the content projection
    items.encode([VideoMeta(video_id="v1", caption="...", hashtags=("cats",))])      # (1, 64)
    users.encode([UserHistory(video_ids=("v1", "v7"))], [UserFeatures.from_entity(...)])
    items.name                                      # tags the vectors: VideoEmbedding.model

Without a trained model, `load_encoders` (fallback=True) returns the *content projection*
(`content-projection-v1`): item = unit(P . content) with a fixed random Gaussian P (Johnson-Lindenstrauss: it
keeps the cosine geometry of the content vectors, so similar captions/hashtags/visuals stay near); user =
unit(mean of the item vectors of `UserHistory.videos`), a zero row when the history has no metadata (skip
ANN for that user). Its vectors are not comparable with a trained model's: the index filters by model name.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Self

import numpy as np
import torch

from fyp.embeddings.content import CONTENT_DIM, ContentEncoder
from fyp.embeddings.hashing import buckets
from fyp.embeddings.meta import UserFeatures, UserHistory, VideoMeta, user_feature_vector
from fyp.embeddings.store import LoadedModel, ModelNotFound, latest_local, latest_s3, load_bytes

__all__ = [
    "EMBEDDING_DIM",
    "PROJECTION_NAME",
    "ItemEncoder",
    "UserEncoder",
    "item_inputs",
    "load_encoders",
    "load_model",
    "user_inputs",
]

log = logging.getLogger("fyp.embeddings")

EMBEDDING_DIM = 64
PROJECTION_NAME = "content-projection-v1"
_PROJECTION_SEED = 64_2019
_CHUNK = 4096


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0).astype(np.float32)


def _projection() -> np.ndarray:
    rng = np.random.default_rng(_PROJECTION_SEED)
    return (rng.standard_normal((CONTENT_DIM, EMBEDDING_DIM)) / np.sqrt(EMBEDDING_DIM)).astype(np.float32)


def item_inputs(model: LoadedModel | None, videos: Sequence[VideoMeta]) -> dict[str, torch.Tensor]:
    """The id bucket tensors of the item tower for these videos (content is passed separately)."""
    config = model.model.config if model else None
    if config is None:
        raise ValueError("item_inputs needs a trained model")
    return {
        "video": torch.from_numpy(buckets((v.video_id for v in videos), config.video_buckets, field="video")),
        "author": torch.from_numpy(buckets((v.author_id for v in videos), config.author_buckets, field="author")),
        "sound": torch.from_numpy(buckets((v.sound_id for v in videos), config.sound_buckets, field="sound")),
    }


def user_inputs(history_len: int, video_buckets: int, histories: Sequence[UserHistory],
                features: Sequence[UserFeatures | None]) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, history_len) right-aligned history buckets (0 pads) and (n, USER_FEATURE_DIM) features."""
    matrix = np.zeros((len(histories), history_len), dtype=np.int64)
    for row, history in enumerate(histories):
        recent = history.video_ids[-history_len:]
        if recent:
            matrix[row, history_len - len(recent):] = buckets(recent, video_buckets, field="video")
    counts = np.array([[getattr(f or UserFeatures(), n) for n in _FEATURE_FIELDS] for f in features],
                      dtype=np.float64).reshape(len(features), len(_FEATURE_FIELDS))
    return torch.from_numpy(matrix), torch.from_numpy(user_feature_vector(counts))


_FEATURE_FIELDS = ("impressions", "plays", "watch_ms", "completions", "skips", "likes", "shares", "not_interested")


class _ModelEncoder:
    """What both encoders share: the loaded model (None: the untrained content-projection fallback)."""

    model: LoadedModel | None

    def __init__(self, model: LoadedModel | None) -> None:
        self.model = model

    @property
    def name(self) -> str:
        return self.model.name if self.model else PROJECTION_NAME

    @property
    def trained(self) -> bool:
        return self.model is not None

    @classmethod
    def load(cls, source: str | Path = "auto", *, fallback: bool = True) -> Self:
        """See `load_model` for `source`."""
        return cls(load_model(source, fallback=fallback))


class ItemEncoder(_ModelEncoder):
    """Videos -> (n, 64) unit float32 rows. `name` identifies the model; `trained` is False for the fallback."""

    dim = EMBEDDING_DIM

    def __init__(self, model: LoadedModel | None, content: ContentEncoder | None = None) -> None:
        super().__init__(model)
        self.content = content or ContentEncoder()
        self._projection = None if model else _projection()

    def encode(self, videos: Sequence[VideoMeta]) -> np.ndarray:
        return self.encode_content(videos, self.content.encode(videos))

    def encode_content(self, videos: Sequence[VideoMeta], content: np.ndarray) -> np.ndarray:
        """Like `encode`, for callers that already hold the content vectors (n, CONTENT_DIM)."""
        if content.shape != (len(videos), CONTENT_DIM):
            raise ValueError(f"content must be ({len(videos)}, {CONTENT_DIM}), got {content.shape}")
        if self.model is None:
            return _unit(content @ self._projection)
        out = np.empty((len(videos), EMBEDDING_DIM), dtype=np.float32)
        ids = item_inputs(self.model, videos)
        with torch.no_grad():
            for s in range(0, len(videos), _CHUNK):
                e = s + _CHUNK
                out[s:e] = self.model.model.item(torch.from_numpy(np.ascontiguousarray(content[s:e])),
                                                 ids["video"][s:e], ids["author"][s:e], ids["sound"][s:e]).numpy()
        return out


class UserEncoder(_ModelEncoder):
    """Users -> (n, 64) unit float32 rows (zero rows: no embedding, only from the fallback)."""

    dim = EMBEDDING_DIM

    def __init__(self, model: LoadedModel | None, items: ItemEncoder | None = None) -> None:
        super().__init__(model)
        self._items = items

    def encode(self, histories: Sequence[UserHistory], features: Sequence[UserFeatures | None] | None = None,
               ) -> np.ndarray:
        """histories[i] (oldest first) and features[i] (None or missing: all zeros) -> row i."""
        features = list(features) if features is not None else [None] * len(histories)
        if len(features) != len(histories):
            raise ValueError(f"{len(histories)} histories but {len(features)} feature rows")
        if self.model is None:
            return self._projected(histories)
        config = self.model.model.config
        history, feats = user_inputs(config.history_len, config.video_buckets, histories, features)
        with torch.no_grad():
            return self.model.model.user(history, feats).numpy().astype(np.float32)

    def _projected(self, histories: Sequence[UserHistory]) -> np.ndarray:
        items = self._items or ItemEncoder(None)
        self._items = items
        out = np.zeros((len(histories), EMBEDDING_DIM), dtype=np.float32)
        for row, history in enumerate(histories):
            if history.videos:
                out[row] = items.encode(list(history.videos)).mean(axis=0)
        return _unit(out)


def load_model(source: str | Path = "auto", *, fallback: bool = True) -> LoadedModel | None:
    """The trained model to encode with, or None for the content projection.

    source: "auto" ($FYP_HOME/models/two-tower/LATEST, else the S3 LATEST), "local", "s3", "projection"
    (None, on purpose), or the path of a model.pt file. fallback: when nothing is found, return None instead of
    raising ModelNotFound.
    """
    if str(source) == "projection":
        return None
    try:
        if str(source) in ("auto", "local", "s3"):
            from fyp.config import load_settings

            settings = load_settings()
            if source in ("auto", "local"):
                try:
                    return latest_local(settings.home)
                except ModelNotFound:
                    if source == "local":
                        raise
            from fyp.index.snapshot import S3ObjectStore
            from fyp.media.publish import make_s3_client

            return latest_s3(S3ObjectStore(make_s3_client(settings), settings.media_bucket))
        path = Path(source)
        if not path.is_file():
            raise ModelNotFound(f"{path} is not a file")
        return load_bytes(path.read_bytes(), path.parent.name)
    except ModelNotFound:
        if not fallback:
            raise
        log.warning("no trained two-tower model (%s): using %s", source, PROJECTION_NAME)
        return None
    except Exception as exc:  # S3 down or unreachable: the fallback keeps encoders available
        if not fallback:
            raise
        log.warning("could not load a two-tower model from %s (%s): using %s", source, exc, PROJECTION_NAME)
        return None


def load_encoders(source: str | Path = "auto", *, fallback: bool = True) -> tuple[ItemEncoder, UserEncoder]:
    """An item and a user encoder sharing one model (and one sentence model)."""
    model = load_model(source, fallback=fallback)
    items = ItemEncoder(model)
    return items, UserEncoder(model, items)
