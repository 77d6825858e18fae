"""Feature declarations, one module per entity family.

`ALL_FEATURE_SETS` is what the features job computes; `READ_VERSIONS` is the one version of each set that readers
(fyp.serving, `fyp verify`) read, and `SERVED_FEATURE_SETS` those sets. While a set changes, the job computes its
old and new versions side by side and readers switch by changing one value (docs/ADDING_FEATURES.md).
"""

from __future__ import annotations

from datetime import timedelta

from features.comments import author_comment_sentiment, video_comment_sentiment
from features.engagement import (
    author_engagement,
    region_language_engagement,
    sound_engagement,
    user_author_affinity,
    user_engagement,
    user_hashtag_affinity,
    video_engagement,
)
from featurespec import FeatureSet
from featurespec.versions import read_sets

__all__ = ["ALLOWED_LATENESS", "ALL_FEATURE_SETS", "DEDUP_HORIZON", "READ_VERSIONS", "SERVED_FEATURE_SETS",
           "feature_set_for_entity", "feature_sets_for_entity"]

# How the features job admits events; `fyp verify features` recomputes with the same rules.
ALLOWED_LATENESS = timedelta(minutes=2)  # further behind the newest event time: counted, not featured
DEDUP_HORIZON = timedelta(minutes=5)  # an event_id seen again within this (processing time) is dropped

ALL_FEATURE_SETS: tuple[FeatureSet, ...] = (
    video_engagement.v1,
    user_engagement.v1,
    author_engagement.v1,
    sound_engagement.v1,
    user_author_affinity.v1,
    user_hashtag_affinity.v1,
    region_language_engagement.v1,
    video_comment_sentiment.v1,
    author_comment_sentiment.v1,
)

# The version readers read, one value per set name; it must be one the job computes (`read_sets` checks).
READ_VERSIONS: dict[str, int] = {
    "video_engagement": 1,
    "user_engagement": 1,
    "author_engagement": 1,
    "sound_engagement": 1,
    "user_author_affinity": 1,
    "user_hashtag_affinity": 1,
    "region_language_engagement": 1,
    "video_comment_sentiment": 1,
    "author_comment_sentiment": 1,
}

SERVED_FEATURE_SETS: tuple[FeatureSet, ...] = read_sets(ALL_FEATURE_SETS, READ_VERSIONS)


def feature_sets_for_entity(entity: str) -> tuple[FeatureSet, ...]:
    """Every set readers read of `entity`, its main set (`feature_set_for_entity`) first."""
    found = tuple(fs for fs in SERVED_FEATURE_SETS if fs.entity.name == entity)
    if not found:
        feature_set_for_entity(entity)  # raises with the list of known entities
    return found


def feature_set_for_entity(entity: str) -> FeatureSet:
    """The entity's main feature set: the first declared, at its read version (serving's candidate matrix reads
    this one)."""
    for feature_set in SERVED_FEATURE_SETS:
        if feature_set.entity.name == entity:
            return feature_set
    known = ", ".join(dict.fromkeys(fs.entity.name for fs in SERVED_FEATURE_SETS))
    raise ValueError(f"no feature set for entity {entity!r}; known: {known}")
