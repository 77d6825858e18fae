"""A/B experiments: declarations (`spec`), the deterministic assignment of users to arms (`assign`), statistics
(`stats`), and the report from the engagement history (`report`, read by `history`)."""
