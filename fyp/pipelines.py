"""The catalogue of Flink jobs: the file in `jobs/`, the pipeline name Flink shows, the consumer group.

Every process that names a job (the jobs themselves, `fyp submit`, the demo, the benchmarks, chaos, the tests)
reads it here, so a renamed pipeline cannot leave one of them looking for the old name. No PyFlink import: the
tools environment reads it too.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DEFAULT_MAX_PARALLELISM",
    "ENGAGEMENT_FEATURES_JOB",
    "ENGAGEMENT_HISTORY_JOB",
    "EXPLORATION_JOB",
    "FOLLOW_GRAPH_JOB",
    "PIPELINES",
    "SERVED_TRAINING_JOB",
    "UPLOAD_ORCHESTRATION_JOB",
    "VIDEO_EMBEDDINGS_JOB",
    "Pipeline",
    "pipeline",
]


# Keyed state is split into max-parallelism key groups, fixed when a job first starts and kept in every savepoint:
# a job can later rescale (`fyp rescale`) to any parallelism up to it, never beyond, and a savepoint taken under
# another value cannot be restored at all. Flink derives a default from the first parallelism, so it is set
# here on purpose instead. 128 key groups cost nothing at 1-8 slots and leave room for 16x the largest
# parallelism the cluster profile runs; a job whose keyed state is tiny keeps the same value for simplicity.
DEFAULT_MAX_PARALLELISM = 128


@dataclass(frozen=True, kw_only=True)
class Pipeline:
    """One Flink job: `jobs/<job>.py`, submitted as `pipeline_name`, reading Kafka as `group_id`.

    max_parallelism: `pipeline.max-parallelism`, the job's key-group count (see DEFAULT_MAX_PARALLELISM).
    parallelism: what a local submission runs at when it names none (`flink run -p`; None: the cluster's
        `parallelism.default`). A default, not a pin: `fyp submit -p N` and `fyp rescale` override it.
    """

    job: str
    pipeline_name: str
    group_id: str
    summary: str
    max_parallelism: int = DEFAULT_MAX_PARALLELISM
    parallelism: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.max_parallelism <= 32768:  # Flink's upper bound on key groups
            raise ValueError(f"{self.job}: max_parallelism {self.max_parallelism} is not in 1..32768")
        if self.parallelism is not None and not 1 <= self.parallelism <= self.max_parallelism:
            raise ValueError(f"{self.job}: parallelism {self.parallelism} is not in 1..{self.max_parallelism}")

    def flink_config(self) -> dict[str, str]:
        """The settings every job applies first: its name, and its max parallelism so it can rescale."""
        return {"pipeline.name": self.pipeline_name, "pipeline.max-parallelism": str(self.max_parallelism)}


ENGAGEMENT_FEATURES_JOB = Pipeline(job="engagement_features", pipeline_name="fyp-engagement-features",
                               group_id="fyp-engagement-features",
                               summary="engagement events -> windowed features in Redis")
ENGAGEMENT_HISTORY_JOB = Pipeline(job="engagement_history", pipeline_name="fyp-engagement-history",
                              group_id="fyp-engagement-history",
                              summary="engagement events -> history.engagement_events (Iceberg, exactly once)")
EXPLORATION_JOB = Pipeline(job="exploration", pipeline_name="fyp-exploration", group_id="fyp-exploration",
                       summary="promote or demote new videos once each, from their first impressions")
# One slot each on the local stack by default: its TaskManager has 8, and the demo runs every job (the features,
# history, orchestration and embedding jobs take 2 each; docs/OPERATIONS.md, "Flink configuration").
FOLLOW_GRAPH_JOB = Pipeline(job="follow_graph", pipeline_name="fyp-follow-graph", group_id="fyp-follow-graph",
                            summary="follow / unfollow events -> following sets and follower counts in Redis, "
                                    "graph.follows_changelog (Iceberg)", parallelism=1)
UPLOAD_ORCHESTRATION_JOB = Pipeline(job="upload_orchestration", pipeline_name="fyp-upload-orchestration",
                                group_id="fyp-upload-orchestration",
                                summary="upload lifecycle -> video status in Redis and history.videos")
VIDEO_EMBEDDINGS_JOB = Pipeline(job="video_embeddings", pipeline_name="fyp-video-embeddings",
                            group_id="fyp-video-embeddings",
                            summary="ready videos -> content embeddings for the index")
SERVED_TRAINING_JOB = Pipeline(job="served_training", pipeline_name="fyp-served-training",
                               group_id="fyp-served-training",
                               summary="served features + the labels that followed -> training.served_<name> "
                                       "(Iceberg, exactly once)", parallelism=1)

PIPELINES: dict[str, Pipeline] = {p.job: p for p in (
    ENGAGEMENT_FEATURES_JOB, ENGAGEMENT_HISTORY_JOB, EXPLORATION_JOB, FOLLOW_GRAPH_JOB, UPLOAD_ORCHESTRATION_JOB,
    VIDEO_EMBEDDINGS_JOB, SERVED_TRAINING_JOB)}


def pipeline(job: str) -> Pipeline:
    """The catalogue entry of `jobs/<job>.py` (a `.py` suffix is ignored); a KeyError lists the known jobs."""
    name = job.removesuffix(".py")
    if name not in PIPELINES:
        raise KeyError(f"no job {name!r}; known jobs: {', '.join(sorted(PIPELINES))}")
    return PIPELINES[name]
