"""What happened after each impression: completed, liked, shared, followed the author, skipped.

The rows are impressions; the features are those serving reads at that moment (user, video, author, sound,
user x author, user x hashtag) and the user's recent positives, the history the user tower reads
(features/serving_sets.py RECENT_POSITIVES).
"""

from __future__ import annotations

from datetime import timedelta

from features import feature_set_for_entity
from features.engagement.common import COMPLETION_FRACTION, SKIP_DWELL_MS
from features.serving_sets import RECENT_POSITIVES
from featurespec.training import Label, TrainingSet

LABEL_WINDOW = timedelta(minutes=10)

v1 = TrainingSet(
    name="watch_outcomes", version=1,
    spine="event_type = 'impression'",
    labels=(
        Label(name="completed", within=LABEL_WINDOW,
              where=(f"event_type = 'watch' AND video_duration_ms > 0 "
                     f"AND watch_ms >= {COMPLETION_FRACTION} * video_duration_ms")),
        Label(name="liked", within=LABEL_WINDOW, where="event_type = 'like' AND action = 'LIKE'"),
        Label(name="shared", within=LABEL_WINDOW, where="event_type = 'share'"),
        # Keyed by the video the follow came from (a Follow event carries it), not the author: a served row
        # knows its candidates' ids, not their authors.
        Label(name="followed", within=LABEL_WINDOW, where="event_type = 'follow' AND action = 'FOLLOW'"),
        Label(name="skipped", within=LABEL_WINDOW,
              where=f"event_type = 'skip' AND dwell_ms < {SKIP_DWELL_MS}"),
    ),
    feature_sets=tuple(feature_set_for_entity(entity) for entity in
                       ("user", "video", "author", "sound", "user_author", "user_hashtag")),
    histories=(RECENT_POSITIVES,),
    description="impressions, labelled by what the viewer did with the video in the next 10 minutes",
)
