"""Feature declarations, one module per entity family; `ALL_FEATURE_SETS` is what the features job computes."""

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
from udfs.featurespec import FeatureSet

__all__ = ["ALLOWED_LATENESS", "ALL_FEATURE_SETS", "DEDUP_HORIZON", "feature_set_for_entity",
           "feature_sets_for_entity"]

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


def feature_sets_for_entity(entity: str) -> tuple[FeatureSet, ...]:
    """Every set of `entity`, its main set (`feature_set_for_entity`) first."""
    found = tuple(fs for fs in ALL_FEATURE_SETS if fs.entity.name == entity)
    if not found:
        feature_set_for_entity(entity)  # raises with the list of known entities
    return found


def feature_set_for_entity(entity: str) -> FeatureSet:
    """The entity's main feature set: the first declared (serving's candidate matrix reads this one)."""
    for feature_set in ALL_FEATURE_SETS:
        if feature_set.entity.name == entity:
            return feature_set
    known = ", ".join(fs.entity.name for fs in ALL_FEATURE_SETS)
    raise ValueError(f"no feature set for entity {entity!r}; known: {known}")
