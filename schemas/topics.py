"""Kafka topics of the pipeline: name, key, partitions, cleanup policy and the records each carries.

`fyp up` creates them from `ALL_TOPICS`; docs/EVENTS.md explains each choice. A topic name ends in
`.v<N>`: an incompatible change of key or partitioning gets a new topic, never an in-place change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from schemas.registry import EVENT_TYPES

__all__ = [
    "ALL_TOPICS",
    "ENGAGEMENT",
    "ENGAGEMENT_DLQ",
    "EXPLORATION",
    "SERVED_FEATURES",
    "UPLOADS",
    "UPLOADS_DLQ",
    "VIDEO_EMBEDDINGS",
    "VIDEO_STATUS",
    "Cleanup",
    "Topic",
]

Cleanup = Literal["delete", "compact"]


def _record_name(event_type: str) -> str:
    return "".join(part.capitalize() for part in event_type.split("_"))


@dataclass(frozen=True, kw_only=True)
class Topic:
    """One Kafka topic.

    name: full topic name, e.g. "fyp.engagement.v1".
    key_field: record field whose UTF-8 value is the Kafka key (all records on the topic have it).
    partitions: partition count; fixed for the topic's life because the key decides the partition.
    cleanup: "delete" (time-based retention) or "compact" (keep the latest record per key).
    record_names: records (fyp.events.<Name>) that may appear on the topic.
    max_message_bytes: the topic's `max.message.bytes`, when it must differ from the broker's default (1 MiB).

    >>> Topic(name="fyp.example.v1", key_field="video_id", partitions=3, record_names=("Takedown",)).cleanup
    'delete'
    """

    name: str
    key_field: str
    partitions: int
    cleanup: Cleanup = "delete"
    record_names: tuple[str, ...] = ()
    max_message_bytes: int | None = None

    def __post_init__(self) -> None:
        if not self.name.startswith("fyp.") or self.name.rpartition(".")[2][:1] != "v":
            raise ValueError(f"topic name {self.name!r} must look like fyp.<what>.v<N>")
        if self.partitions < 1:
            raise ValueError(f"{self.name}: partitions must be >= 1, got {self.partitions}")
        if self.cleanup not in ("delete", "compact"):
            raise ValueError(f"{self.name}: cleanup must be 'delete' or 'compact', got {self.cleanup!r}")
        if self.max_message_bytes is not None and self.max_message_bytes < 1024:
            raise ValueError(f"{self.name}: max_message_bytes must be >= 1024, got {self.max_message_bytes}")

    def config(self) -> dict[str, str]:
        """The topic's settings for `NewTopic(config=...)`.

        >>> UPLOADS_DLQ.config()
        {'cleanup.policy': 'delete', 'max.message.bytes': '2097152'}
        """
        config = {"cleanup.policy": self.cleanup}
        if self.max_message_bytes is not None:
            config["max.message.bytes"] = str(self.max_message_bytes)
        return config


ENGAGEMENT = Topic(
    name="fyp.engagement.v1",
    key_field="user_id",  # one user's events land on one partition, so a session stays in order
    partitions=6,
    record_names=tuple(_record_name(t) for t in EVENT_TYPES),
)
ENGAGEMENT_DLQ = Topic(
    name="fyp.engagement.dlq.v1",
    key_field="key",  # the original message key, so a replay partitions the same way
    partitions=1,
    record_names=("DeadLetter",),
    # The dead letter of an event as large as the engagement topic takes (1 MiB) is a little larger. Refused, it
    # failed the features job, which replayed the same event and failed again, forever (seen with a 1,048,388-byte
    # comment; tests/integration/test_hostile_events.py). The job's dead-letter producer allows as much.
    max_message_bytes=2 * 1024 * 1024,
)
UPLOADS = Topic(
    name="fyp.uploads.v1",
    key_field="video_id",  # a video's lifecycle stays in order
    partitions=3,
    record_names=(
        "UploadCompleted",
        "TranscodeRequested",
        "TranscodeCompleted",
        "TranscodeFailed",
        "ModerationResult",
        "Takedown",
    ),
)
UPLOADS_DLQ = Topic(
    name="fyp.uploads.dlq.v1",
    key_field="key",  # the original message key (video_id), so a replay partitions the same way
    partitions=1,
    record_names=("DeadLetter",),
    # An original record may be as large as the broker allows (1 MiB by default); its dead letter adds the
    # DeadLetter fields and a header. Twice the default leaves room, so a dead letter is never refused for size
    # (a refused one would stall its worker's partition: it commits only after the dead letter is acknowledged).
    max_message_bytes=2 * 1024 * 1024,
)
VIDEO_EMBEDDINGS = Topic(
    name="fyp.video-embeddings.v1",
    key_field="video_id",
    partitions=3,
    cleanup="compact",  # only the latest vector per video matters; the topic doubles as the index's source
    record_names=("VideoEmbedding",),
)
EXPLORATION = Topic(
    name="fyp.exploration.v1",
    key_field="video_id",
    partitions=3,
    record_names=("ExplorationDecision",),
)
VIDEO_STATUS = Topic(
    name="fyp.video-status.v1",
    key_field="video_id",
    partitions=3,
    cleanup="compact",  # a new consumer needs each video's current status, not its history
    record_names=("VideoStatusChanged",),
)

SERVED_FEATURES = Topic(
    name="fyp.served-features.v1",
    key_field="user_id",  # one user's requests in order; the Kafka timestamp is the served time
    partitions=3,
    record_names=("ServedFeatures",),
    # A sampled ranking request: ~270 KB for 500 candidates of video engagement; one at every field limit of
    # fyp/serving/served_log.py stays under 2 MiB (tests/unit/fyp/serving/test_served_log.py).
    max_message_bytes=2 * 1024 * 1024,
)

ALL_TOPICS: tuple[Topic, ...] = (
    ENGAGEMENT,
    ENGAGEMENT_DLQ,
    UPLOADS,
    UPLOADS_DLQ,
    VIDEO_EMBEDDINGS,
    EXPLORATION,
    VIDEO_STATUS,
    SERVED_FEATURES,
)
