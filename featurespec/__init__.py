"""The feature declaration language, its compiler and its reference semantics, in one place.

- `featurespec.declaration`: `FeatureSet`, `Aggregation`, entities, ... (re-exported here, so a declaration
  module reads `from featurespec import VIDEO, FeatureSet`).
- `featurespec.sql`: compiles a set to the Flink SQL the features job runs.
- `featurespec.docs`: renders docs/FEATURES.md.
- `featurespec.reference`: the same SQL subset evaluated in plain Python, which defines what a feature means
  for `fyp verify`, the Redis restore and the benchmark peers.
- `featurespec.versions`: which version of a set readers read, and when an old one may be retired.
- `featurespec.scaffold`: `fyp features-new`'s templates.

Both environments import this package: keep it free of the tools environment's libraries (pyarrow, redis).
"""

# The declaration API is this package's API: `from featurespec import VIDEO, FeatureSet`.
from featurespec.declaration import *  # noqa: F403
from featurespec.declaration import __all__  # noqa: F401
