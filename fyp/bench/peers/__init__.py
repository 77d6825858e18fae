"""Python peers of the engagement features job, for `fyp bench throughput`: the same video_engagement.v1
features from the same topic into the same packed Redis values, with Quix Streams (`quix_app`), with Bytewax
(`bytewax_flow`) and with a plain consumer loop (`naive_consumer`). `runner.run_peer` runs any of them. All
compute with the reference evaluator, `featurespec.reference` (the declared SQL translated to Python, the job's
window aggregates).
"""
