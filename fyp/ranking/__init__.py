"""The fine ranker: a multi-task model over the training table's feature columns (`inputs`, `model`, `train`),
exported to ONNX and scored by ONNX Runtime (`runtime`), its heads combined into one score (`combine`)."""
