"""The catalogue of Flink jobs: the file in `jobs/`, the pipeline name Flink shows, the consumer group.

Every process that names a job (the jobs themselves, `fyp submit`, the demo, the benchmarks, chaos, the tests)
reads it here, so a renamed pipeline cannot leave one of them looking for the old name. No PyFlink import: the
tools environment reads it too.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ENGAGEMENT_FEATURES_JOB",
    "ENGAGEMENT_HISTORY_JOB",
    "EXPLORATION_JOB",
    "PIPELINES",
    "UPLOAD_ORCHESTRATION_JOB",
    "VIDEO_EMBEDDINGS_JOB",
    "Pipeline",
    "pipeline",
]


@dataclass(frozen=True, kw_only=True)
class Pipeline:
    """One Flink job: `jobs/<job>.py`, submitted as `pipeline_name`, reading Kafka as `group_id`."""

    job: str
    pipeline_name: str
    group_id: str
    summary: str


ENGAGEMENT_FEATURES_JOB = Pipeline(job="engagement_features", pipeline_name="fyp-engagement-features",
                               group_id="fyp-engagement-features",
                               summary="engagement events -> windowed features in Redis")
ENGAGEMENT_HISTORY_JOB = Pipeline(job="engagement_history", pipeline_name="fyp-engagement-history",
                              group_id="fyp-engagement-history",
                              summary="engagement events -> history.engagement_events (Iceberg, exactly once)")
EXPLORATION_JOB = Pipeline(job="exploration", pipeline_name="fyp-exploration", group_id="fyp-exploration",
                       summary="promote or demote new videos once each, from their first impressions")
UPLOAD_ORCHESTRATION_JOB = Pipeline(job="upload_orchestration", pipeline_name="fyp-upload-orchestration",
                                group_id="fyp-upload-orchestration",
                                summary="upload lifecycle -> video status in Redis and history.videos")
VIDEO_EMBEDDINGS_JOB = Pipeline(job="video_embeddings", pipeline_name="fyp-video-embeddings",
                            group_id="fyp-video-embeddings",
                            summary="ready videos -> content embeddings for the index")

PIPELINES: dict[str, Pipeline] = {p.job: p for p in (
    ENGAGEMENT_FEATURES_JOB, ENGAGEMENT_HISTORY_JOB, EXPLORATION_JOB, UPLOAD_ORCHESTRATION_JOB, VIDEO_EMBEDDINGS_JOB)}


def pipeline(job: str) -> Pipeline:
    """The catalogue entry of `jobs/<job>.py` (a `.py` suffix is ignored); a KeyError lists the known jobs."""
    name = job.removesuffix(".py")
    if name not in PIPELINES:
        raise KeyError(f"no job {name!r}; known jobs: {', '.join(sorted(PIPELINES))}")
    return PIPELINES[name]
