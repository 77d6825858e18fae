"""Ranker versions the integration tests save to S3 as `fyp train ranker` saves one (fyp/ranking/store.py): the
training set's inputs with identity normalisation, exported to ONNX. One helper, so the tests that need a ranker
without training one (~7 minutes on this machine) build it one way."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

__all__ = ["identity_spec", "save_ranker", "save_untrained_ranker"]


def identity_spec() -> Any:
    """The `InputSpec` of the training set's ranker inputs (`fyp.ranking.lake.ranker_sets`), mean 0 and std 1."""
    from fyp.ranking.inputs import InputSpec
    from fyp.ranking.lake import ranker_sets

    sets = ranker_sets()
    width = sum(len(c) for _, c in sets)
    return InputSpec(sets=tuple((n, tuple(c)) for n, c in sets), mean=(0.0,) * width, std=(1.0,) * width)


def save_ranker(store: Any, prefix: str, model: Any, spec: Any, **metadata: Any) -> str:
    """`model` (a torch module of spec.width inputs, one output per head) saved under `prefix`; its version."""
    from fyp.ranking.runtime import to_onnx
    from fyp.ranking.store import save, serialize

    version, data = serialize(to_onnx(model, spec.width), {"spec": spec.to_json(), **metadata},
                              now=datetime.now(UTC))
    save(store, version, data, prefix=prefix)
    return version


def save_untrained_ranker(store: Any, prefix: str) -> str:
    """An untrained `MultiTaskRanker` (seed 0) of the training set's inputs, saved under `prefix`; its version."""
    import torch

    from fyp.ranking.model import MultiTaskRanker

    spec = identity_spec()
    torch.manual_seed(0)
    return save_ranker(store, prefix, MultiTaskRanker(spec.width), spec)
