"""Hand-rolled single-object Avro encoding of engagement events: the generator's hot path.

Why not fastavro: a dict per event plus `schemaless_writer` costs ~8 µs, and the producer must sustain
100k events/s on one core next to librdkafka. Here an event is a join of byte strings, most of them
precomputed: per record type the header (marker, fingerprint, event-id prefix) and version, per user,
video, locale and session their encoded fields. Per event only the event number, the timestamp and a
few small ints are encoded. Field order follows the .avsc files: `_check_layout` refuses to start when
a schema no longer matches, and tests/unit/fyp/traffic/test_traffic.py compares every event type byte for byte with
fastavro. Faulty events (rare) go through the record renderer and the registry instead.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fyp.traffic.catalog import Catalog
from fyp.traffic.ids import RunIds
from fyp.traffic.model import (
    COMMENT,
    FAULT_GARBAGE,
    FAULT_TRUNCATED,
    FAULT_UNKNOWN_FINGERPRINT,
    FOLLOW,
    IMPRESSION,
    KIND_RECORDS,
    KIND_TYPES,
    LIKE,
    LOOP,
    NOT_INTERESTED,
    SHARE,
    SKIP,
    SOUND,
    UNLIKE,
    WATCH,
    ViewBlock,
)
from fyp.traffic.records import RecordRenderer
from fyp.traffic.vocab import (
    COMMENTS,
    FOLLOW_ACTIONS,
    LOCALES,
    NOT_INTERESTED_REASONS,
    SHARE_CHANNELS,
    SOUND_ACTIONS,
    SURFACES,
)
from schemas.registry import HEADER_SIZE, SchemaRegistry

__all__ = ["EncodedBatch", "FastEncoder", "avro_long", "avro_string"]

# The layout the hand-rolled encoding assumes: (field, kind) in .avsc order. Kinds as _kind() names them.
_CONTEXT = (
    ("event_id", "string"), ("event_time", "long:timestamp-millis"), ("schema_version", "int"),
    ("user_id", "string"), ("video_id", "string"), ("author_id", "string"), ("sound_id", "null|string"),
    ("region", "string"), ("language", "string"), ("session_id", "string"), ("hashtags", "array<string>"),
)  # fmt: skip
_DETAILS = {
    "Impression": (("position", "int"), ("surface", "string"), ("arms", "array<string>")),
    "Watch": (("watch_ms", "long"), ("video_duration_ms", "long")),
    "Loop": (("loop_count", "int"), ("video_duration_ms", "long")),
    "Skip": (("dwell_ms", "long"), ("video_duration_ms", "long")),
    "Like": (("action", "enum"),),
    "Share": (("channel", "string"),),
    "Save": (),
    "Follow": (("action", "enum"),),
    "Comment": (("comment_id", "string"), ("text", "string")),
    "SoundEngagement": (("action", "enum"),),
    "NotInterested": (("reason", "null|string"),),
}
_EVENT_ID_LENGTH = 36
_MAX_EVENT_NUMBER = 16**12  # the event id has 12 hex digits for it


def avro_long(n: int) -> bytes:
    """Avro int/long: zig-zag, then 7 bits a byte, least significant first."""
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def avro_string(s: str) -> bytes:
    data = s.encode()
    return avro_long(len(data)) + data


def _optional_string(s: str | None) -> bytes:
    return b"\x00" if s is None else b"\x02" + avro_string(s)  # union branch 0 = null, 1 = string


def _string_array(items: Iterable[str]) -> bytes:
    items = list(items)
    if not items:
        return b"\x00"
    return avro_long(len(items)) + b"".join(avro_string(s) for s in items) + b"\x00"


def _symbol(registry: SchemaRegistry, record: str, symbol: str) -> bytes:
    field = next(f for f in registry.latest(record).schema["fields"] if f["name"] == "action")
    return avro_long(field["type"]["symbols"].index(symbol))


def _kind(schema: Any) -> str:
    """Short name of a field type: "string", "null|string", "array<string>", "long:timestamp-millis"."""
    if isinstance(schema, list):
        return "|".join(_kind(s) for s in schema)
    if isinstance(schema, str):
        return schema
    if schema["type"] == "array":
        return f"array<{_kind(schema['items'])}>"
    if "logicalType" in schema:
        return f"{schema['type']}:{schema['logicalType']}"
    return schema["type"]


def _check_layout(registry: SchemaRegistry) -> None:
    for record, details in _DETAILS.items():
        fields = tuple((f["name"], _kind(f["type"])) for f in registry.latest(record).schema["fields"])
        if fields != _CONTEXT + details:
            raise RuntimeError(
                f"{record}.avsc fields {fields} no longer match the hand-rolled encoder "
                f"(expects {_CONTEXT + details}); update fyp/traffic/encoder.py"
            )


@dataclass(frozen=True, kw_only=True)
class EncodedBatch:
    """Kafka-ready events: (key, value) pairs in stream order, and their count per event type.

    counts: events per event type (snake_case), bad ones under "malformed".
    kinds, faults: the model's event kind and fault (0 = good) of each pair.
    times: each pair's event time, epoch ms: the producer sends it as the Kafka timestamp (CreateTime), so
    jobs whose watermarks follow Kafka timestamps (jobs/served_training.py) see event time, also for traffic on
    an accelerated clock (fyp/traffic/clock.py). Empty: Kafka stamps the send time.
    """

    pairs: list[tuple[bytes, bytes]]
    counts: dict[str, int]
    kinds: list[int]
    faults: list[int]
    times: list[int] = field(default_factory=list)

    def head(self, n: int) -> EncodedBatch:
        """The first `n` events, recounted."""
        kinds, faults = self.kinds[:n], self.faults[:n]
        counts = Counter("malformed" if f else KIND_TYPES[k] for k, f in zip(kinds, faults, strict=True))
        return EncodedBatch(pairs=self.pairs[:n], counts=dict(counts), kinds=kinds, faults=faults,
                            times=self.times[:n])


class FastEncoder:
    """Encodes ViewBlocks; keeps caches of encoded users, videos, sessions and numbers."""

    def __init__(self, registry: SchemaRegistry, catalog: Catalog, ids: RunIds, seed: int) -> None:
        _check_layout(registry)
        self._registry = registry
        self._catalog = catalog
        self._ids = ids
        self._records = RecordRenderer(catalog, ids, registry)
        self._rng = np.random.default_rng([seed, 4])  # bytes of garbage payloads
        id_prefix = avro_long(_EVENT_ID_LENGTH) + ids.event_prefix.encode()
        self._head = [registry.latest(r).header + id_prefix for r in KIND_RECORDS]
        self._version = [avro_long(registry.latest(r).version) for r in KIND_RECORDS]
        self._locale = [avro_string(region) + avro_string(language) for region, language, _ in LOCALES]
        self._surface = [avro_string(s) for s, _ in SURFACES]
        self._channel = [avro_string(s) for s, _ in SHARE_CHANNELS]
        self._reason = [_optional_string(s) for s, _ in NOT_INTERESTED_REASONS]
        self._comment = [avro_string(s) for s, _ in COMMENTS]
        self._like = _symbol(registry, "Like", "LIKE")
        self._unlike = _symbol(registry, "Like", "UNLIKE")
        self._follow = [_symbol(registry, "Follow", s) for s, _ in FOLLOW_ACTIONS]
        self._sound = [_symbol(registry, "SoundEngagement", s) for s, _ in SOUND_ACTIONS]
        self._loop = [avro_long(k) for k in range(1, 6)]
        self._small = [avro_long(k) for k in range(4096)]
        self._longs: dict[int, bytes] = {}
        self._users: dict[int, tuple[bytes, bytes]] = {}
        self._videos: dict[int, tuple[bytes, bytes, bytes]] = {}
        self._sessions: dict[int, bytes] = {}
        self._arms: dict[tuple[str, ...], bytes] = {(): _string_array(())}

    def _user(self, user: int) -> tuple[bytes, bytes]:
        key = f"u{user}".encode()
        found = self._users[user] = (key, avro_long(len(key)) + key)
        return found

    def _video(self, index: int) -> tuple[bytes, bytes, bytes]:
        v = self._catalog.video(index)
        ids = avro_string(v.video_id) + avro_string(v.author_id) + _optional_string(v.sound_id)
        found = self._videos[index] = (ids, _string_array(v.hashtags), avro_long(v.duration_ms))
        return found

    def _long(self, n: int) -> bytes:
        if len(self._longs) > 500_000:  # bounded: watch and dwell times are below 3 minutes anyway
            self._longs.clear()
        found = self._longs[n] = avro_long(n)
        return found

    def _encoded_arms(self, arms: tuple[str, ...]) -> bytes:
        if len(self._arms) > 10_000:  # bounded: a deployment runs a few experiments with a few arms each
            self._arms = {(): _string_array(())}
        found = self._arms[arms] = _string_array(arms)
        return found

    def encode(self, block: ViewBlock) -> EncodedBatch:
        """The block's events, Kafka-ready. An impression carries `block.arms[v]` of its view (empty: none)."""
        if block.first_event + len(block.event_kind) > _MAX_EVENT_NUMBER:
            raise OverflowError("event numbers exhausted for this run id; start a new run")
        if len(self._sessions) > 100_000:
            self._sessions.clear()
        pairs: list[tuple[bytes, bytes]] = []
        append = pairs.append
        head, version, small, longs, times = self._head, self._version, self._small, self._longs, {}
        users, videos, sessions, locales = self._users, self._videos, self._sessions, self._locale
        loop, like, unlike, surfaces = self._loop, self._like, self._unlike, self._surface
        first, prev_view = block.first_event, -1
        key = ctx = duration = b""
        watch_ms, dwell_ms, position = block.watch_ms, block.dwell_ms, block.position
        view_arms, arm_cache = block.arms, self._arms
        events = zip(block.event_view, block.event_kind, block.event_time, block.event_fault, strict=True)
        for i, (v, kind, t, fault) in enumerate(events):
            if v != prev_view:  # a view's events are contiguous: build its shared context once
                prev_view = v
                key, user_id = users.get(block.user[v]) or self._user(block.user[v])
                video_ids, tags, duration = videos.get(block.video[v]) or self._video(block.video[v])
                session = sessions.get(block.session[v])
                if session is None:
                    session = sessions[block.session[v]] = avro_string(self._ids.session_id(block.session[v]))
                ctx = b"".join((user_id, video_ids, locales[block.locale[v]], session, tags))
            if fault:
                append((key, self._faulty(block, i, fault)))
                continue
            if kind == IMPRESSION:
                p = position[v]
                arms = tuple(view_arms[v]) if view_arms else ()
                encoded_arms = arm_cache.get(arms) or self._encoded_arms(arms)
                tail = (small[p] if p < 4096 else avro_long(p)) + surfaces[block.surface[v]] + encoded_arms
            elif kind == WATCH:
                tail = (longs.get(watch_ms[v]) or self._long(watch_ms[v])) + duration
            elif kind == SKIP:
                tail = (longs.get(dwell_ms[v]) or self._long(dwell_ms[v])) + duration
            elif kind == LIKE:
                tail = like
            elif kind >= LOOP and kind < LIKE:
                tail = loop[kind - LOOP] + duration
            elif kind == UNLIKE:
                tail = unlike
            elif kind == SHARE:
                tail = self._channel[block.channel[v]]
            elif kind == COMMENT:
                tail = avro_string(self._ids.comment_id(first + i)) + self._comment[block.comment[v]]
            elif kind == FOLLOW:
                tail = self._follow[block.follow_action[v]]
            elif kind == SOUND:
                tail = self._sound[block.sound_action[v]]
            elif kind == NOT_INTERESTED:
                tail = self._reason[block.reason[v]]
            else:  # save has no fields of its own
                tail = b""
            stamp = times.get(t)
            if stamp is None:
                stamp = times[t] = avro_long(t)
            append((key, b"".join((head[kind], b"%012x" % (first + i), stamp, version[kind], ctx, tail))))
        return EncodedBatch(
            pairs=pairs, counts=block.counts, kinds=block.event_kind, faults=block.event_fault,
            times=block.event_time,
        )

    def _faulty(self, block: ViewBlock, i: int, fault: int) -> bytes:
        if fault == FAULT_GARBAGE:
            return self._rng.bytes(int(self._rng.integers(1, 41)))
        name, record = self._records.record(block, i)  # applies missing-id and negative-duration faults
        payload = self._registry.encode(name, record)
        if fault == FAULT_UNKNOWN_FINGERPRINT:
            return payload[:2] + self._rng.bytes(8) + payload[HEADER_SIZE:]
        if fault == FAULT_TRUNCATED:
            return payload[: int(self._rng.integers(HEADER_SIZE + 1, len(payload)))]
        return payload
