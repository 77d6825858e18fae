"""The engagement row of a Kafka value, as `udfs.envelope.to_engagement_row` gives it, at a fraction of its cost.

`FastDecoder()` generates, once per current engagement schema (one per 10-byte header: marker + fingerprint), a
function that reads the Avro body with the registry's generated decoder (`schemas.decoder.compile_decoder`), lays
out the row with no per-record lookups, and checks every field contract of `udfs/limits.py` as one boolean
expression: the reference's per-character Python loop over ids becomes one regular-expression search over the
ids joined. A record that passes is returned as it is. Anything else (a record that breaks a contract, is late in
the future, is undecodable, has an older schema version or another record type, or is not bytes at all) goes to
`to_engagement_row` itself, so a bad record gets exactly the reference's reason, at the reference's cost. The fast
path only has to tell good from bad; tests/unit/fyp/bench/test_fast_decode.py checks both on generated traffic,
on every record of tests/hostile_corpus.py and on random bytes. It never raises: an exception in the fast path
also falls back to the reference, which never raises.

>>> from schemas.registry import default_registry
>>> payload = default_registry().encode("Save", {"event_id": "e1", "event_time": 1_700_000_000_000,
...     "user_id": "u1", "video_id": "v1", "author_id": "a1", "region": "US", "language": "en",
...     "session_id": "s1"})
>>> decode = FastDecoder()
>>> decode(payload, now_ms=1_700_000_000_000) == to_engagement_row(payload, now_ms=1_700_000_000_000)
True
>>> decode(b"not avro", now_ms=0)[-1]
'undecodable:bad_marker'
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from schemas.decoder import UnsupportedSchema, compile_decoder
from schemas.registry import EVENT_TYPES, default_registry
from udfs import limits
from udfs.envelope import _DETAIL, ENGAGEMENT_COLUMNS, to_engagement_row

__all__ = ["FastDecoder"]

Row = tuple[Any, ...]
# The columns every engagement record carries under the same name (what `to_engagement_row` reads from `r[...]`).
_COMMON = ("event_id", "event_time", "user_id", "video_id", "author_id", "sound_id", "region", "language",
           "session_id", "hashtags")
# The row's columns that depend on the event type, in row order after `_COMMON` (to_engagement_row's `_DETAIL`).
_DETAIL_COLUMNS = ("watch_ms", "video_duration_ms", "dwell_ms", "loop_count", "action", "comment_text")
if ("event_type", "event_id", "event_time", "schema_version", *_COMMON[2:], *_DETAIL_COLUMNS,
        "arms") != ENGAGEMENT_COLUMNS:
    raise RuntimeError(f"fast_decode lays rows out as {_COMMON} and {_DETAIL_COLUMNS}; the row is now "
                       f"{ENGAGEMENT_COLUMNS}")
# What limits.invalid_id_reason refuses: the key separator or a control character.
_BAD_ID = re.compile(f"[{re.escape(limits.KEY_SEPARATOR)}\\x00-\\x1f\\x7f]").search


class FastDecoder:
    """`decoder(payload, now_ms)`: the row of `to_engagement_row(payload, now_ms, max_future_ms)`, fast for good
    records of the current engagement schemas.

    max_future_ms: tolerated client clock skew, ms (default 5 minutes, as to_engagement_row). The schemas are the
    default registry's (schemas/avro), the ones to_engagement_row reads.
    """

    def __init__(self, *, max_future_ms: int = 300_000) -> None:
        registry = default_registry()
        self.max_future_ms = max_future_ms
        self._fast: dict[bytes, Callable[[bytes, int], Row | None]] = {}
        self.sources: dict[str, str] = {}  # record name -> generated code, for reading and debugging
        for name in registry.record_names:
            entry = registry.latest(name)
            if entry.event_type not in EVENT_TYPES:
                continue  # to_engagement_row gives unknown_type:<name> (or undecodable), from the fallback
            try:
                read = compile_decoder(dict(entry.schema))
            except UnsupportedSchema:
                continue  # the registry reads it with fastavro: leave it to the fallback
            source, function = _generate(entry.event_type, entry.version, entry.schema, read, max_future_ms)
            self.sources[name] = source
            self._fast[entry.header] = function

    def __call__(self, payload: bytes, now_ms: int) -> Row:
        try:
            fast = self._fast.get(payload[:10])
            if fast is not None:
                row = fast(payload, now_ms)
                if row is not None:
                    return row
        except Exception:  # an undecodable body, or not bytes: the reference says which
            pass
        return to_engagement_row(payload, now_ms, self.max_future_ms)


class _Field(str):
    """A record field name, as a probe of `udfs.envelope._DETAIL` reads it (see `_detail_sources`)."""


class _Probe(dict):
    def __getitem__(self, name: str) -> _Field:
        return _Field(name)


def _detail_sources(event_type: str) -> tuple[str | None, ...]:
    """The record field behind each detail column of `event_type`'s row (None: always NULL), read from the
    reference's own mapping, so that the two cannot disagree."""
    return tuple(value if isinstance(value, _Field) else None for value in _DETAIL[event_type](_Probe()))


def _nullable(schema: Mapping[str, Any], field: str) -> bool:
    for f in schema["fields"]:
        if f["name"] == field:
            return isinstance(f["type"], list) and "null" in f["type"]
    raise ValueError(f"{schema['name']} has no field {field!r}, which to_engagement_row reads")


def _generate(event_type: str, version: int, schema: Mapping[str, Any], read: Callable[[bytes, int], dict],
              max_future_ms: int) -> tuple[str, Callable[[bytes, int], Row | None]]:
    """The source and function of one schema's fast path: its row, or None when the record breaks a contract."""
    sources = dict(zip(_DETAIL_COLUMNS, _detail_sources(event_type), strict=True))
    present = {c: c for c in _COMMON} | {c: f for c, f in sources.items() if f is not None}  # column -> field
    nullable = {c for c, f in present.items() if _nullable(schema, f)}
    lines = ["def row(payload, now_ms):", "    r = _read(payload, 10)"]
    lines += [f"    {column} = r[{field!r}]" for column, field in present.items()]
    bad = ["not event_id", "not user_id", "not video_id"]

    def maybe(column: str, test: str) -> str:
        return f"({column} is not None and {test})" if column in nullable else f"({test})"

    for column, limit in limits.TEXT_LIMITS.items():  # UTF-8 length over the limit (only possible from limit/4)
        if column in present:
            bad.append(maybe(column, f"len({column}) * 4 > {limit} and "
                                     f"len({column}.encode('utf-8', 'surrogatepass')) > {limit}"))
    # The key separator or a control character in any id or hashtag: one search over them all joined.
    ids = " + ".join(f"({c} or '')" if c in nullable else c for c in limits.ID_FIELDS if c in present)
    bad.append(f"_bad_id({ids} + ''.join(hashtags))")
    bad.append(f"len(hashtags) > {limits.MAX_HASHTAGS}")
    bad.append(f"(hashtags and max(map(len, hashtags)) * 4 > {limits.MAX_HASHTAG_BYTES} and _long_tag(hashtags))")
    has_arms = any(f["name"] == "arms" for f in schema["fields"])  # Impression v2 on; to_engagement_row's r.get
    if has_arms:
        lines.append("    arms = r['arms']")
        bad.append(f"(arms and (len(arms) > {limits.MAX_ARMS} or not all(map(_valid_arm, arms))))")
    for column in limits.DURATION_FIELDS:
        if column in present:
            bad.append(maybe(column, f"{column} < 0"))
    if "video_duration_ms" in present:
        bad.append(maybe("video_duration_ms", f"video_duration_ms > {limits.MAX_VIDEO_DURATION_MS}"))
    if "watch_ms" in present:
        over = f"watch_ms > {limits.MAX_VIDEO_DURATION_MS + limits.WATCH_TOLERANCE_MS}"
        if "video_duration_ms" in present:
            past = f"watch_ms > video_duration_ms + {limits.WATCH_TOLERANCE_MS}"
            over += f" or {maybe('video_duration_ms', past)}"
        bad.append(maybe("watch_ms", over))
    if "dwell_ms" in present:
        bad.append(maybe("dwell_ms", f"dwell_ms > {limits.MAX_DWELL_MS}"))
    if "loop_count" in present:
        bad.append(maybe("loop_count", f"not 1 <= loop_count <= {limits.MAX_LOOP_COUNT}"))
    bad.append(f"event_time > now_ms + {max_future_ms}")
    lines.append("    if (" + "\n            or ".join(bad) + "):")
    lines.append("        return None")
    values = [repr(event_type), "event_id", "event_time", repr(version), *_COMMON[2:],
              *(c if c in present else "None" for c in _DETAIL_COLUMNS), "arms" if has_arms else "[]", "None"]
    lines.append(f"    return ({', '.join(values)})")
    source = "\n".join(lines) + "\n"
    namespace: dict[str, Any] = {"_read": read, "_bad_id": _BAD_ID, "_long_tag": _long_tag,
                                 "_valid_arm": _valid_arm}
    exec(compile(source, f"<fast engagement row {event_type}>", "exec"), namespace)  # generated from the schema
    return source, namespace["row"]


def _long_tag(hashtags: list[str]) -> bool:
    """A hashtag over its byte limit (limits.field_error)."""
    return any(len(tag.encode("utf-8", "surrogatepass")) > limits.MAX_HASHTAG_BYTES for tag in hashtags)


def _valid_arm(arm: str) -> bool:
    """An arm id within its byte limit and of the form 'experiment:arm' (limits.field_error's arm checks)."""
    return len(arm) <= limits.MAX_ARM_ID_BYTES and limits.valid_arm_id(arm)
