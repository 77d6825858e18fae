"""Ids to embedding buckets by a stable hash: unseen ids (new uploads, new authors) still get a bucket.

Bucket 0 is reserved for "no id" (padding, a video without a sound). The hash is BLAKE2b with a per-field
salt, so a video id and an author id with the same text land in unrelated buckets, and the mapping is the
same in every process and on every machine (Python's own `hash` is salted per process).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

__all__ = ["bucket", "buckets"]


def bucket(value: str | None, n_buckets: int, *, field: str) -> int:
    """The bucket of one id in 1..n_buckets-1; 0 for None or ''.

    >>> bucket("v1", 1024, field="video") == bucket("v1", 1024, field="video")
    True
    >>> bucket(None, 1024, field="video")
    0
    """
    if n_buckets < 2:
        raise ValueError(f"n_buckets must be >= 2, got {n_buckets}")
    if not value:
        return 0
    digest = hashlib.blake2b(value.encode(), digest_size=8, salt=field.encode()[:16].ljust(16, b"\0")).digest()
    return 1 + int.from_bytes(digest, "little") % (n_buckets - 1)


def buckets(values: Iterable[str | None], n_buckets: int, *, field: str) -> np.ndarray:
    """int64 buckets of many ids (see `bucket`)."""
    return np.fromiter((bucket(v, n_buckets, field=field) for v in values), dtype=np.int64)
