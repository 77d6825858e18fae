"""The encoders other components call: videos -> item vectors, users -> user vectors, both (n, 64) float32
with unit rows (dot product = cosine), in the space the index service searches.

    items, users = load_encoders()                 # the latest trained model, else the content projection
    items.encode([VideoMeta(video_id="v1", author_id="a1", sound_id="s1", hashtags=("cats",))])   # (1, 64)
    users.encode([UserHistory(video_ids=("v7", "v1"))], [UserFeatures.from_entity(...)])   # newest first
    items.name                                      # the model id: tags the vectors (VideoEmbedding.model)

A trained model reads exactly the inputs training read, through the same functions
(`fyp.embeddings.inputs.item_inputs`, `user_inputs`): a video's id, author, sound and hashtags; a user's
recent positives (newest first) and user_engagement.v1 values. Caption, OCR text and media are not inputs of
a trained model (the training table has none of them).

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
from fyp.embeddings.inputs import item_inputs, user_feature_matrix, user_inputs
from fyp.embeddings.meta import UserFeatures, UserHistory, VideoMeta
from fyp.embeddings.store import LoadedModel, ModelNotFound, latest_local, latest_s3, load_bytes

__all__ = [
    "EMBEDDING_DIM",
    "PROJECTION_NAME",
    "ItemEncoder",
    "UserEncoder",
    "load_encoders",
    "load_model",
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
    """Videos -> (n, 64) unit float32 rows. `name` identifies the model; `trained` is False for the fallback.

    A trained model reads video_id, author_id, sound_id and hashtags only (and never loads the sentence model);
    the fallback reads the content vector (caption, OCR text, hashtags, media: fyp.embeddings.content)."""

    dim = EMBEDDING_DIM

    def __init__(self, model: LoadedModel | None, content: ContentEncoder | None = None) -> None:
        super().__init__(model)
        self._content = content
        self._projection = None if model else _projection()

    @property
    def content(self) -> ContentEncoder:
        if self._content is None:
            self._content = ContentEncoder()
        return self._content

    def encode(self, videos: Sequence[VideoMeta]) -> np.ndarray:
        if self.model is not None:
            return self._trained(videos)
        return self.encode_content(videos, self.content.encode(videos))

    def encode_content(self, videos: Sequence[VideoMeta], content: np.ndarray | None) -> np.ndarray:
        """Like `encode`, for callers that already hold the content vectors (n, CONTENT_DIM); a trained model
        ignores them (None is accepted then)."""
        if self.model is not None:
            return self._trained(videos)
        if content is None or content.shape != (len(videos), CONTENT_DIM):
            raise ValueError(f"content must be ({len(videos)}, {CONTENT_DIM}), got "
                             f"{None if content is None else content.shape}")
        return _unit(content @ self._projection)

    def _trained(self, videos: Sequence[VideoMeta]) -> np.ndarray:
        tower = self.model.model.item
        out = np.empty((len(videos), tower.config.output_dim), dtype=np.float32)
        with torch.no_grad():
            for s in range(0, len(videos), _CHUNK):
                chunk = videos[s:s + _CHUNK]
                inputs = item_inputs([v.video_id for v in chunk], [v.author_id for v in chunk],
                                     [v.sound_id for v in chunk], [v.hashtags for v in chunk], tower.config)
                out[s:s + len(chunk)] = tower.encode(inputs).numpy()
        return out


class UserEncoder(_ModelEncoder):
    """Users -> (n, 64) unit float32 rows (zero rows: no embedding, only from the fallback)."""

    dim = EMBEDDING_DIM

    def __init__(self, model: LoadedModel | None, items: ItemEncoder | None = None) -> None:
        super().__init__(model)
        self._items = items

    def encode(self, histories: Sequence[UserHistory], features: Sequence[UserFeatures | None] | None = None,
               ) -> np.ndarray:
        """histories[i] (recent positives, newest first) and features[i] (None: nothing known) -> row i."""
        features = list(features) if features is not None else [None] * len(histories)
        if len(features) != len(histories):
            raise ValueError(f"{len(histories)} histories but {len(features)} feature rows")
        if self.model is None:
            return self._projected(histories)
        tower = self.model.model.user
        raw = user_feature_matrix([f.values if f else None for f in features], tower.config.user_feature_columns)
        inputs = user_inputs([h.video_ids for h in histories], raw, tower.config)
        with torch.no_grad():
            return tower.encode(inputs).numpy().astype(np.float32)

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
            from connectors.s3_objects import S3ObjectStore
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
