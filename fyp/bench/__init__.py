"""Benchmarks (`fyp bench …`): long measurements that print p50/p95/p99 and rates; not timed tests."""
