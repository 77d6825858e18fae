"""Training-set declarations (featurespec.training): spine, labels and the feature sets joined, one module each.

`TRAINING_SETS` is what `fyp training-set build` and the served-feature join job know by name.
"""

from __future__ import annotations

from training import watch_outcomes

__all__ = ["TRAINING_SETS", "training_set"]

TRAINING_SETS = (watch_outcomes.v1,)


def training_set(name: str):
    """The declared training set called `name`, with a clear error naming the known ones."""
    for declared in TRAINING_SETS:
        if declared.name == name:
            return declared
    raise ValueError(f"no training set {name!r}; declared: {', '.join(t.name for t in TRAINING_SETS)}")
