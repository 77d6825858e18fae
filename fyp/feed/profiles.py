"""The viewer's age, from the user profile hash `fyp:user:v1:{user_id}` (field `birth_date`, ISO `YYYY-MM-DD`).

The feed reads the field in its filter round trip (`fyp.feed.reads.read_filter_state`) and shows age-restricted
videos only to a viewer whose profile makes them at least `ADULT_AGE` on the request's date (UTC). No profile,
no `birth_date`, or a value that is not a valid date between `MAX_AGE_YEARS` ago and today: the viewer is
treated as a minor (the safe default), and the response says which (`viewer.age`: "adult", "minor",
"unknown", "invalid").

`fyp load-profiles FILE.csv` writes the hashes (`write_profiles`): HSET of the absolute value, one per user.

>>> from datetime import date
>>> viewer_age(b"2000-02-29", date(2018, 2, 28)), viewer_age(b"2000-02-29", date(2018, 3, 1))
('minor', 'adult')
>>> viewer_age(None, date(2026, 1, 1)), viewer_age(b"29/02/2000", date(2026, 1, 1))
('unknown', 'invalid')
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from udfs.limits import MAX_ID_BYTES, invalid_id_reason

__all__ = ["ADULT_AGE", "BIRTH_DATE_FIELD", "MAX_AGE_YEARS", "MAX_PROFILE_FILE_BYTES", "USER_PROFILE_PREFIX",
           "age_years", "parse_birth_date", "profile_key", "read_profiles_csv", "today", "viewer_age",
           "write_profiles"]

USER_PROFILE_PREFIX = "fyp:user:v1:"
BIRTH_DATE_FIELD = "birth_date"
ADULT_AGE = 18
MAX_PROFILE_FILE_BYTES = 256 << 20  # one load; ~10 million rows
MAX_AGE_YEARS = 130  # an older birth date is a typo or a placeholder (1900-01-01), not a viewer


def profile_key(user_id: str) -> str:
    return USER_PROFILE_PREFIX + user_id


def today(now_ms: int) -> date:
    return datetime.fromtimestamp(now_ms / 1000, tz=UTC).date()


def age_years(born: date, on: date) -> int:
    """Whole years from `born` to `on` (a 29 February birthday comes on 1 March in other years)."""
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def parse_birth_date(text: str, on: date) -> date:
    """`text` as a birth date valid on `on`; ValueError saying why not."""
    if len(text) != 10:
        raise ValueError(f"birth_date must be YYYY-MM-DD, got {text[:40]!r}")
    born = date.fromisoformat(text)  # ValueError for 2001-02-30 and other non-dates
    if born > on:
        raise ValueError(f"birth_date {text} is in the future")
    if age_years(born, on) > MAX_AGE_YEARS:
        raise ValueError(f"birth_date {text} is over {MAX_AGE_YEARS} years ago")
    return born


def viewer_age(value: bytes | str | None, on: date) -> str:
    """"adult", "minor", "unknown" (no value) or "invalid" (module docstring); only "adult" sees restricted videos."""
    if value is None:
        return "unknown"
    try:
        born = parse_birth_date(value.decode() if isinstance(value, bytes) else value, on)
    except (ValueError, UnicodeDecodeError):
        return "invalid"
    return "adult" if age_years(born, on) >= ADULT_AGE else "minor"


def read_profiles_csv(path: Path) -> list[tuple[str, str]]:
    """(user_id, birth_date) rows of a CSV whose header names `user_id` and `birth_date` (other columns ignored);
    a file over `MAX_PROFILE_FILE_BYTES` or a field over 64 characters is refused (the dates are checked on write)."""
    if path.stat().st_size > MAX_PROFILE_FILE_BYTES:
        raise ValueError(f"{path}: over {MAX_PROFILE_FILE_BYTES} bytes; split it")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"user_id", BIRTH_DATE_FIELD} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: the header lacks {', '.join(sorted(missing))}")
        rows = []
        for line, row in enumerate(reader, start=2):
            user_id, born = (row.get("user_id") or "").strip(), (row.get(BIRTH_DATE_FIELD) or "").strip()
            if len(born) > 64:
                raise ValueError(f"{path}:{line}: birth_date over 64 characters")
            rows.append((user_id, born))
    return rows


def write_profiles(redis: Any, rows: Iterable[tuple[str, str]], *, on: date) -> int:
    """HSET `birth_date` for each (user, birth date), all validated before any is written; how many were written.
    The value is absolute: loading a file twice leaves the same hashes."""
    checked: list[tuple[str, str]] = []
    for line, (user_id, text) in enumerate(rows, start=1):
        reason = invalid_id_reason(user_id) if user_id else "empty"
        if not reason and len(user_id.encode()) > MAX_ID_BYTES:
            reason = f"over {MAX_ID_BYTES} bytes"
        if reason:
            raise ValueError(f"row {line}: user id {user_id[:40]!r}: {reason}")
        try:
            parse_birth_date(text, on)
        except ValueError as exc:
            raise ValueError(f"row {line} ({user_id}): {exc}") from exc
        checked.append((user_id, text))
    pipe = redis.pipeline(transaction=False)  # on a Redis Cluster, redis-py groups the single-key HSETs by node
    for user_id, text in checked:
        pipe.hset(profile_key(user_id), BIRTH_DATE_FIELD, text)
    pipe.execute()
    return len(checked)
