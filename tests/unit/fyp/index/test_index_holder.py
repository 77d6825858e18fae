"""The index behind its lock: writes in batches, similar-video search without the video itself, swaps."""

from __future__ import annotations

import numpy as np

from fyp.index.holder import IndexHolder
from fyp.index.scann_index import ScannIndex
from fyp.index.updates import Update, collapse
from tests.unit.fyp.index.index_records import DIM, unit


def holder_of(n: int) -> IndexHolder:
    return IndexHolder(ScannIndex.build([f"v{i}" for i in range(n)], np.stack([unit(i) for i in range(n)])))


def test_apply_writes_a_collapsed_batch():
    holder = holder_of(10)
    batch = collapse([Update("v1", None), Update("new", unit(3)), Update("v2", None), Update("v2", unit(5))], DIM)
    holder.apply(*batch)
    assert "v1" not in holder.index and "new" in holder.index and len(holder.index) == 10
    assert holder.similar("new", 1)[0].video_id == "v3"
    assert holder.similar("v2", 1)[0].video_id == "v5"


def test_similar_leaves_the_video_out_and_counts_searches():
    holder = holder_of(20)
    found = holder.similar("v3", 2)
    assert {n.video_id for n in found} == {"v11", "v19"} and holder.searches == 1  # same vector as v3
    assert holder.similar("missing", 2) is None and holder.searches == 1  # no search without a vector
    assert holder.search(unit(4), 1)[0].video_id in {"v4", "v12"} and holder.searches == 2


def test_swap_replaces_the_index_searches_see():
    holder = holder_of(5)
    holder.swap(ScannIndex.build(["only"], unit(0)[None, :]))
    assert [n.video_id for n in holder.search(unit(0), 3)] == ["only"]
