"""Comment feature sets: what viewers say, scored by udfs/sentiment.py."""
