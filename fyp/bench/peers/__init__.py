"""Python peers of the engagement features job, for `fyp bench throughput`: the same video_engagement.v1
features from the same topic into the same packed Redis values, once with Quix Streams (`quix_app`) and once
with a plain consumer loop (`naive_consumer`). `runner.run_peer` runs either. The Quix peer computes with the
reference evaluator, `featurespec.reference` (the declared SQL translated to Python, the job's window aggregates);
the naive peer with `fast_decode` and `fast_fold`, the same rows and values from code generated once per schema and
per feature set (docs/PERFORMANCE.md "The naive peer").
"""
