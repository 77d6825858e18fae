"""Approximate nearest-neighbour search over video embeddings: ScaNN, its peers, the service, snapshots.

See docs/INDEX.md. `fyp.index.ann` and `fyp.index.scann_index` are light to import; ScaNN, FAISS and hnswlib
load on first use.
"""

from fyp.index.ann import AnnIndex, Neighbor, normalize
from fyp.index.scann_index import ScannIndex, ScannParams

__all__ = ["AnnIndex", "Neighbor", "ScannIndex", "ScannParams", "normalize"]
