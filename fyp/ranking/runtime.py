"""The exported ranker as serving loads it: ONNX bytes run by ONNX Runtime, with the input spec and head names.

ONNX Runtime, not torch, in the serving process: it is already a dependency (moderation's NSFW model), loads in
milliseconds, and scores 100 candidates in well under a millisecond on one thread.

>>> import torch
>>> from fyp.ranking.model import MultiTaskRanker
>>> spec = InputSpec(sets=(("s", ("s__a",)),), mean=(0.0,), std=(1.0,))
>>> model = RankerRuntime(to_onnx(MultiTaskRanker(spec.width), spec.width), spec)
>>> model.predict({"s__a": np.array([1.0, 2.0, 3.0])}).shape
(3, 5)
"""

from __future__ import annotations

import io
from collections.abc import Mapping

import numpy as np

from fyp.ranking.inputs import InputSpec, transform

__all__ = ["RankerRuntime", "to_onnx"]

ONNX_OPSET = 17


def to_onnx(model, width: int) -> bytes:
    """`model` (a MultiTaskRanker) as ONNX bytes, with a dynamic row count."""
    import torch

    model.eval()
    buffer = io.BytesIO()
    torch.onnx.export(model, (torch.zeros(2, width),), buffer, dynamo=False, opset_version=ONNX_OPSET,
                      input_names=["inputs"], output_names=["probabilities"],
                      dynamic_axes={"inputs": {0: "rows"}, "probabilities": {0: "rows"}})
    return buffer.getvalue()


class RankerRuntime:
    """Score rows with an exported ranker; one ONNX Runtime session on one thread (serving runs many requests
    side by side, each on its own thread)."""

    def __init__(self, onnx_bytes: bytes, spec: InputSpec) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
        self.spec = spec
        width = self._session.get_inputs()[0].shape[1]
        if width != spec.width:
            raise ValueError(f"the model takes {width} inputs, the spec gives {spec.width}: mismatched files")

    def predict_matrix(self, inputs: np.ndarray) -> np.ndarray:
        """Probabilities (rows x heads) for an already transformed input matrix."""
        return self._session.run(None, {"inputs": inputs.astype(np.float32, copy=False)})[0]

    def predict(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """Probabilities (rows x heads, HEADS order) for rows given as feature columns (`<set>__<column>`)."""
        return self.predict_matrix(transform(self.spec, columns))
