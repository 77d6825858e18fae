"""Approximate nearest-neighbour search over video embeddings: ScaNN, its peers, the service, snapshots.

See docs/INDEX.md. `fyp.index.ann` is light to import; ScaNN, FAISS and hnswlib load on first use.
"""

from fyp.index.ann import AnnIndex, Neighbor, ScannIndex, ScannParams, normalize

__all__ = ["AnnIndex", "Neighbor", "ScannIndex", "ScannParams", "normalize"]
