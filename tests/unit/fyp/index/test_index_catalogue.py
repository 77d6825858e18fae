"""The catalogue from the video hashes (ready ones only, in batches, a glob over ids) and the one item-tower
input of a hash, on plain data."""

from __future__ import annotations

import fnmatch

import pytest

from fyp.index.catalogue import ready_videos, video_meta


class PlainRedis:
    def __init__(self, hashes):
        self.hashes = hashes

    def scan_iter(self, match, count):
        return [k.encode() for k in self.hashes if fnmatch.fnmatchcase(k, match)]

    def pipeline(self, transaction=False):
        redis, calls = self, []

        class Pipe:
            def hgetall(self, key):
                calls.append({k.encode(): v.encode() for k, v in redis.hashes.get(key, {}).items()})

            def execute(self):
                return list(calls)

        return Pipe()


HASHES = {f"fyp:video:v1:v{i}": {"video_id": f"v{i}", "status": "ready" if i % 3 else "removed",
                                 "author_id": f"a{i}", "hashtags": '["cats", "dogs"]', "sound_id": "s1"}
          for i in range(10)}


def test_only_ready_videos_in_batches_and_a_glob_over_ids():
    batches = list(ready_videos(PlainRedis(HASHES), batch=4))
    assert [len(b) for b in batches] == [2, 3, 1]  # v0, v3, v6, v9 are removed
    assert sorted(h["video_id"] for b in batches for h in b) == ["v1", "v2", "v4", "v5", "v7", "v8"]
    assert [h["video_id"] for b in ready_videos(PlainRedis(HASHES), videos="v[12]") for h in b] == ["v1", "v2"]
    with pytest.raises(ValueError, match="batch"):
        next(ready_videos(PlainRedis(HASHES), batch=0))


def test_video_meta_carries_the_fields_the_item_tower_reads():
    meta = video_meta({**HASHES["fyp:video:v1:v1"], "ocr_text": "hello", "caption": "a cat"})
    assert (meta.video_id, meta.author_id, meta.sound_id, meta.hashtags) == ("v1", "a1", "s1", ("cats", "dogs"))
    assert meta.ocr_text == "hello" and meta.caption == "a cat"
