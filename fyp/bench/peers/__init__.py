"""Python peers of the engagement features job, for `fyp bench throughput`: the same video_engagement.v1
features from the same topic into the same packed Redis values, with Quix Streams (`quix_app`), with Bytewax
(`bytewax_flow`), with Pathway (`pathway_flow`, in its own environment) and with a plain consumer loop
(`naive_consumer`). `runner.run_peer` runs any of them. The Quix peer computes with the reference evaluator,
`featurespec.reference` (the declared SQL translated to Python, the job's window aggregates); the naive, Bytewax
and Pathway peers with `fast_fold` (and the naive peer decodes with `fast_decode`): the same values from code
generated once per feature set (docs/PERFORMANCE.md "The naive peer").
"""
