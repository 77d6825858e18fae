"""The index behind its lock: writes in batches, similar-video search without the video itself, swaps."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from fyp.index.holder import IndexHolder, OtherModel
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


def test_a_query_of_another_model_is_refused_and_counted_never_searched():
    holder = IndexHolder(ScannIndex.build(["a"], unit(0)[None, :]), model="m1")
    assert holder.search(unit(0), 1, model="m1")[0].video_id == "a"
    with pytest.raises(OtherModel, match="made by model 'm0', but this index serves 'm1'"):
        holder.search(unit(0), 1, model="m0")
    assert holder.searches == 1 and holder.refused.by_model() == {"other_model": {"m0": 1}}


def test_during_a_model_swap_every_query_gets_the_index_of_its_model_or_a_refusal():
    old = ScannIndex.build([f"old{i}" for i in range(50)], np.stack([unit(i) for i in range(50)]))
    new = ScannIndex.build([f"new{i}" for i in range(50)], np.stack([unit(i) for i in range(50)]))
    holder = IndexHolder(old, model="m1")
    outcomes: list[str] = []
    stop = threading.Event()

    def query(model: str) -> None:
        while not stop.is_set():
            try:
                found = holder.search(unit(1), 1, model=model)[0].video_id
                outcomes.append(f"{model}:{found[:3]}")
            except OtherModel:
                outcomes.append(f"{model}:refused")

    threads = [threading.Thread(target=query, args=(m,)) for m in ("m1", "m2")]
    for t in threads:
        t.start()
    while len(outcomes) < 200:
        time.sleep(0.001)
    holder.swap(new, model="m2")
    seen = len(outcomes)
    while len(outcomes) < seen + 200:
        time.sleep(0.001)
    stop.set()
    for t in threads:
        t.join()
    assert set(outcomes) <= {"m1:old", "m2:refused", "m1:refused", "m2:new"}
    assert {"m1:old", "m2:new"} <= set(outcomes) and holder.swaps == 1
