"""Reference semantics of the declaration language: a `FeatureSet` computed in plain Python, exactly as the
Flink features job computes it (`featurespec.sql`).

- `parse` and `sql`: the declared Flink SQL snippets (filters, summed values) as Python functions of an
  engagement row.
- `aggregates`: SLIDING_SUM and DECAYED_SUM with the Java aggregates' semantics (udfs/java/aggregates).
- `evaluate`: `FeatureEvaluator`, a whole set: keys, per-row updates, the packed Redis value.

`fyp verify features` (fyp/lake/verify.py), the Redis restore (fyp/lake/restore.py) and the benchmark peers
(fyp/bench/peers) import it; training data is to use it too.
"""
