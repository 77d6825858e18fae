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
    """int64 buckets of many ids (see `bucket`); each distinct id is hashed once (histories repeat ids a lot).

    >>> buckets(["v1", None, "v1"], 1024, field="video").tolist() == [bucket("v1", 1024, field="video"), 0,
    ...                                                                bucket("v1", 1024, field="video")]
    True
    """
    values = list(values)
    cache: dict[str | None, int] = {}
    out = np.empty(len(values), dtype=np.int64)
    for i, value in enumerate(values):
        found = cache.get(value)
        if found is None:
            found = cache[value] = bucket(value, n_buckets, field=field)
        out[i] = found
    return out
