"""The benchmark's peers and exact search behave like ScannIndex: recall, upsert, delete, save/load."""

from __future__ import annotations

import numpy as np
import pytest

from fyp.index.ann import AnnIndex
from fyp.index.exact import ExactIndex, exact_top_k
from fyp.index.peers import FaissHnswIndex, FaissIvfIndex, HnswlibIndex

N, DIM = 3_000, 16


@pytest.fixture(scope="module", autouse=True)
def one_faiss_thread():
    """OpenMP threads spin while they wait: on a busy 2-core machine one thread is much faster."""
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((30, DIM))
    points = (centres[rng.integers(0, 30, N + 100)] + rng.standard_normal((N + 100, DIM))).astype(np.float32)
    return [f"vid-{i}" for i in range(N)], points[:N], points[N:]


BUILDERS = {
    "faiss-ivf": lambda ids, v: FaissIvfIndex.build(ids, v, nlist=50),
    "faiss-ivfpq": lambda ids, v: FaissIvfIndex.build(ids, v, nlist=50, pq=True),
    "faiss-hnsw": lambda ids, v: FaissHnswIndex.build(ids, v, m=16, ef_construction=64),
    "hnswlib": lambda ids, v: HnswlibIndex.build(ids, v, m=16, ef_construction=64),
    "exact": ExactIndex.build,
}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def peer(request, data) -> AnnIndex:
    ids, vectors, _ = data
    return BUILDERS[request.param](ids, vectors)


def test_recall_upsert_delete_save_load(peer, data, tmp_path):
    ids, vectors, queries = data
    assert isinstance(peer, AnnIndex)
    if hasattr(peer, "nprobe"):
        peer.nprobe, peer.k_factor = 16, 8
    truth = exact_top_k(
        vectors / np.linalg.norm(vectors, axis=1, keepdims=True),
        queries / np.linalg.norm(queries, axis=1, keepdims=True),
        10,
    )[0]
    found = peer.search_batch(queries, 10)
    hits = sum(len({n.video_id for n in f} & {ids[r] for r in t}) for f, t in zip(found, truth.tolist(), strict=True))
    assert hits / truth.size >= 0.9

    new = np.random.default_rng(1).standard_normal((2, DIM)).astype(np.float32)
    peer.upsert(["new-a", "new-b"], new)
    assert peer.search(new[0], 1)[0].video_id == "new-a"
    peer.upsert(["new-a"], new[1:2])  # replace: now next to new-b
    assert {n.video_id for n in peer.search(new[1], 2)} == {"new-a", "new-b"}
    np.testing.assert_allclose(peer.vector("new-b"), new[1] / np.linalg.norm(new[1]), atol=1e-5)
    assert peer.delete(["new-a", "nope"]) == 1
    assert "new-a" not in {n.video_id for n in peer.search(new[1], 5)}
    assert len(peer) == N + 1

    peer.save(tmp_path)
    loaded = type(peer).load(tmp_path)
    assert [[n.video_id for n in f] for f in loaded.search_batch(queries[:20], 10)] == [
        [n.video_id for n in f] for f in peer.search_batch(queries[:20], 10)
    ]
    assert len(loaded) == len(peer)
    peer.delete(["new-b"])


def test_exact_top_k_is_sorted_and_exact():
    base = np.eye(5, dtype=np.float32)
    rows, scores = exact_top_k(base, np.array([[0.1, 0.9, 0.0, 0.5, 0.0]], np.float32), 3, chunk=1)
    assert rows.tolist() == [[1, 3, 0]]
    assert scores[0].tolist() == pytest.approx([0.9, 0.5, 0.1])

