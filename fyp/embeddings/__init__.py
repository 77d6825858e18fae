"""Video and user embeddings: content vectors (MiniLM + cheap media features), the two-tower model, encoders.

The API other components use (docs/EMBEDDINGS.md):

    from fyp.embeddings import load_encoders, VideoMeta, UserHistory, UserFeatures
    items, users = load_encoders()          # latest trained model, else the content projection
    items.encode([VideoMeta(...)])          # (n, 64) float32, unit rows
    users.encode([UserHistory(...)], [UserFeatures(...)])

torch and the sentence model are imported by the submodules, not here, beyond what the names below need.
"""

from fyp.embeddings.encoders import (
    EMBEDDING_DIM,
    PROJECTION_NAME,
    ItemEncoder,
    UserEncoder,
    load_encoders,
    load_model,
)
from fyp.embeddings.meta import UserFeatures, UserHistory, VideoMeta
from fyp.embeddings.store import ModelNotFound

__all__ = [
    "EMBEDDING_DIM",
    "PROJECTION_NAME",
    "ItemEncoder",
    "ModelNotFound",
    "UserEncoder",
    "UserFeatures",
    "UserHistory",
    "VideoMeta",
    "load_encoders",
    "load_model",
]
