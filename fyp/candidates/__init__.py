"""Candidate generation: sources (ANN, co-watch, followed authors, trending, exploration), filters, quotas."""

from fyp.candidates.generator import CandidateGenerator, Generated
from fyp.candidates.merge import DEFAULT_SHARES, SOURCES, Candidate, merge, quota_counts
from fyp.candidates.sources import RedisSources

__all__ = ["DEFAULT_SHARES", "SOURCES", "Candidate", "CandidateGenerator", "Generated", "RedisSources", "merge",
           "quota_counts"]
