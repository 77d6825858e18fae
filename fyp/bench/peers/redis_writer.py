"""Write packed feature values to Redis as the Java sink does (docs/REDIS_LAYOUT.md): one pipeline per batch,
a server-side check that never replaces a value with an older event time, and a TTL on every write.

The Lua script is the Java sink's (connectors/java/redis-sink: LuaScripts.PACKED), byte for byte in effect:
KEYS[1] key; ARGV[1] packed value (int64 LE event time first); ARGV[2] its event time ms; ARGV[3] TTL ms.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import redis

from featurespec import FeatureSet
from fyp.config import Settings

__all__ = ["PACKED_SET_SCRIPT", "PackedFeatureWriter", "redis_client"]

PACKED_SET_SCRIPT = """\
local cur = redis.call('GET', KEYS[1])
if cur and #cur >= 8 and struct.unpack('<i8', cur) > tonumber(ARGV[2]) then return 0 end
local ttl = tonumber(ARGV[3])
if ttl > 0 then redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
else redis.call('SET', KEYS[1], ARGV[1]) end
return 1
"""


def redis_client(settings: Settings) -> redis.Redis:
    return settings.redis_client()


class PackedFeatureWriter:
    """Writes {entity id: packed value} batches of one feature set; counts what it wrote and what it skipped."""

    def __init__(self, client: redis.Redis, feature_set: FeatureSet) -> None:
        self.client = client
        self.prefix = feature_set.key_prefix
        self.ttl_ms = int(feature_set.ttl.total_seconds() * 1000)
        self._script = client.register_script(PACKED_SET_SCRIPT)
        self.written = 0
        self.stale_skipped = 0

    def write(self, values: Mapping[str, bytes]) -> int:
        """Write one batch in one pipeline, stamping the update time (bytes 8..16) now; returns keys written.

        values: entity id -> packed value whose update time is still 0 (FeatureEvaluator.pack).
        """
        if not values:
            return 0
        update_time = int(time.time() * 1000).to_bytes(8, "little", signed=True)
        pipe = self.client.pipeline(transaction=False)
        for entity_id, packed in values.items():
            event_time = int.from_bytes(packed[:8], "little", signed=True)
            self._script(keys=[self.prefix + entity_id], args=[packed[:8] + update_time + packed[16:], event_time,
                                                               self.ttl_ms], client=pipe)
        replies = pipe.execute()
        written = sum(1 for r in replies if r == 1)
        self.written += written
        self.stale_skipped += len(replies) - written
        return written
