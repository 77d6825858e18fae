"""The hook for a violence/gore signal: what a classifier must provide. No violence model runs today.

No package on PyPI or Debian was found (2026-12) that ships violence/gore/weapon weights in its wheel or sdist
under a licence usable in an Apache-2.0 network service, and nothing may download at run time
(docs/MODERATION.md, "Violence: no model runs", lists what was checked and why each was rejected). So the
moderator's `violence` is None and `ModerationSignals.violence_score` stays None, which proposes nothing; the
verdict rule and its thresholds (`ModerationPolicy.violence_restrict_at` / `violence_reject_at`) are in place
and unit-tested, so a classifier that meets this protocol only has to be passed to `workers.moderator.Moderator`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

__all__ = ["ViolenceClassifier", "ViolenceScore"]


@dataclass(frozen=True, kw_only=True)
class ViolenceScore:
    """A video's violence/gore probability (`score`, the maximum: one graphic frame is enough to act on) and
    each frame's, in frame order, all 0..1."""

    score: float
    frame_scores: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.frame_scores:
            raise ValueError("a violence score needs at least one frame score")
        if any(not 0.0 <= s <= 1.0 for s in self.frame_scores):
            raise ValueError(f"frame scores must be in 0..1, got {self.frame_scores}")
        if self.score != max(self.frame_scores):
            raise ValueError(f"score ({self.score}) must be the maximum frame score ({max(self.frame_scores)})")


class ViolenceClassifier(Protocol):
    """Scores sampled frames (HxWx3 uint8 RGB, as `fyp.moderation.frames.sample_frames` gives them) for violence
    or gore, like `fyp.moderation.nsfw.NsfwClassifier.score_frames`; raises ValueError when there are none. An
    implementation loads its weights from an installed package, never from the network, and runs on the CPU
    within the per-video budget (at most 9 frames: 8 sampled and the cover)."""

    def score_frames(self, frames: Sequence[np.ndarray]) -> ViolenceScore: ...
