"""Engagement feature sets: one module per entity, sharing the aggregations and windows in `common`."""
