"""A/B experiments: declarations (`spec`) and the deterministic assignment of users to arms (`assign`)."""
