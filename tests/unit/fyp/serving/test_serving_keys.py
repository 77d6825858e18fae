"""Reader-side key building (fyp/serving/client.py): one key per entity, ids that could share one refused."""

from __future__ import annotations

import pytest

from features.engagement import user_author_affinity, video_engagement
from fyp.serving.client import _key, _keys


def test_pair_keys_join_with_the_separator():
    assert _key(user_author_affinity.v1, ("u1", "a7")) == user_author_affinity.v1.key_prefix + "u1:a7"


@pytest.mark.parametrize("pair", [("a:b", "c"), ("a", "b:c"), ("a\nb", "c")])
def test_ids_that_would_share_a_key_are_refused(pair):
    with pytest.raises(ValueError, match="no such entity can be stored"):
        _key(user_author_affinity.v1, pair)


def test_one_column_keys_take_the_fast_path():
    assert _keys(video_engagement.v1, ["v1", "v2"]) == [video_engagement.v1.key_prefix + v for v in ("v1", "v2")]
