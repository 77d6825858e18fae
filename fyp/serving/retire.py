"""Delete the keys of a retired feature-set version: SCAN its prefix, UNLINK in batches.

Only once nothing writes or reads that version (`featurespec.versions.retire_refusal` says why not yet); its keys
would otherwise expire by TTL alone, holding memory for up to the set's ttl. SCAN never blocks Redis the way
KEYS would, and UNLINK frees the values in a background thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["RetireResult", "retire_prefix"]


@dataclass(frozen=True, kw_only=True)
class RetireResult:
    prefix: str
    matched: int  # keys found under the prefix
    deleted: int  # keys UNLINK removed (0 for a dry run; fewer than matched if some expired meanwhile)
    dry_run: bool


def retire_prefix(redis_client: Any, prefix: str, *, dry_run: bool = False, batch: int = 1_000) -> RetireResult:
    """UNLINK every key starting with `prefix` (a `featurespec.key_prefix`, which holds no glob characters), at
    most `batch` keys per command; with `dry_run`, only count them."""
    if not prefix.endswith(":") or any(c in prefix for c in "*?[]\\"):
        raise ValueError(f"{prefix!r} is not a key prefix (it must end with ':' and hold no glob characters)")
    matched = deleted = 0
    pending: list[bytes] = []

    def flush() -> None:
        nonlocal deleted
        if not dry_run:
            deleted += redis_client.unlink(*pending)
        pending.clear()

    for key in redis_client.scan_iter(match=f"{prefix}*", count=batch):
        matched += 1
        pending.append(key)
        if len(pending) >= batch:
            flush()
    if pending:
        flush()
    return RetireResult(prefix=prefix, matched=matched, deleted=deleted, dry_run=dry_run)
