"""Names of the Iceberg tables, in one place for both environments: the Flink jobs write them (without
pyiceberg) and `connectors.iceberg_tables` creates them and declares their columns (with pyiceberg)."""

from __future__ import annotations

__all__ = [
    "EMBEDDINGS_NAMESPACE",
    "ENGAGEMENT_HISTORY",
    "FOLLOWS",
    "FOLLOWS_CHANGELOG",
    "GRAPH_NAMESPACE",
    "HISTORY_NAMESPACE",
    "MODERATION_NAMESPACE",
    "TAKEDOWNS",
    "UPLOAD_EVENTS",
    "VIDEOS_CHANGELOG",
    "VIDEO_EMBEDDINGS",
    "VIDEO_EMBEDDINGS_TABLE",
]

HISTORY_NAMESPACE = "history"
ENGAGEMENT_HISTORY = f"{HISTORY_NAMESPACE}.engagement_events"  # jobs/engagement_history.py
EMBEDDINGS_NAMESPACE = "embeddings"
VIDEO_EMBEDDINGS_TABLE = "video_embeddings"
VIDEO_EMBEDDINGS = f"{EMBEDDINGS_NAMESPACE}.{VIDEO_EMBEDDINGS_TABLE}"  # jobs/video_embeddings.py
UPLOAD_EVENTS = f"{HISTORY_NAMESPACE}.upload_events"  # jobs/upload_orchestration.py
VIDEOS_CHANGELOG = f"{HISTORY_NAMESPACE}.videos_changelog"  # jobs/upload_orchestration.py; `history.videos` reads it
MODERATION_NAMESPACE = "moderation"
TAKEDOWNS = f"{MODERATION_NAMESPACE}.takedowns"  # fyp.uploads.takedowns (the API and `fyp takedown`) append to it
GRAPH_NAMESPACE = "graph"
FOLLOWS_CHANGELOG = f"{GRAPH_NAMESPACE}.follows_changelog"  # jobs/follow_graph.py appends every follow event
FOLLOWS = f"{GRAPH_NAMESPACE}.follows"  # `fyp sql`'s view of the current edges over FOLLOWS_CHANGELOG (fyp/lake/sql.py)
