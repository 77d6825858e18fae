"""The behaviour model: sessions of users scrolling videos, drawn a block of views at a time with numpy.

A view is one video shown in a session. The video comes, with probability `interest_traffic_fraction`,
from one of the viewer's interest topics (Zipf popularity within the topic), otherwise from global Zipf
popularity or the newest uploads. Every view starts with an impression; then the viewer skips (short dwell,
sometimes "not interested") or watches. Completion is likelier for short and good videos and for videos in
the viewer's interests; completed videos may loop; likes, shares, saves, comments, follows and sound
engagement grow with the fraction watched, the loops, the video's latent quality and the interest match.
Events of a view are contiguous in the block; views of different sessions interleave. Pure and seeded: same
seed and clock, same output.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fyp.traffic.behaviour import (
    LOOP_GEOMETRIC_P,
    PARTIAL_BETA,
    complete_logit,
    engagement_logit,
    follow_logit,
    like_logit,
    loop_logit,
    partial_fraction,
    share_logit,
    skip_probability,
)
from fyp.traffic.catalog import Catalog, cumulative, draw, zipf_cdf
from fyp.traffic.config import TrafficConfig
from fyp.traffic.vocab import (
    FOLLOW_ACTIONS,
    NEGATIVE_COMMENTS,
    NOT_INTERESTED_REASONS,
    OTHER_COMMENTS,
    POSITIVE_COMMENTS,
    SHARE_CHANNELS,
    SOUND_ACTIONS,
    SURFACES,
)
from schemas.registry import event_type_of

__all__ = [
    "BYTE_FAULTS",
    "DURATION_KINDS",
    "FAULT_GARBAGE",
    "FAULT_MISSING_ID",
    "FAULT_NEGATIVE_DURATION",
    "FAULT_TRUNCATED",
    "FAULT_UNKNOWN_FINGERPRINT",
    "KIND_RECORDS",
    "KIND_TYPES",
    "MAX_LOOPS",
    "TrafficModel",
    "ViewBlock",
]

# Event kinds, in the order they are emitted within a view. Kinds 4..8 are loops 1..5.
IMPRESSION, SKIP, NOT_INTERESTED, WATCH, LOOP = 0, 1, 2, 3, 4
MAX_LOOPS = 5
LIKE, UNLIKE, SHARE, SAVE, COMMENT, FOLLOW, SOUND = range(LOOP + MAX_LOOPS, LOOP + MAX_LOOPS + 7)
KIND_RECORDS: tuple[str, ...] = (
    ("Impression", "Skip", "NotInterested", "Watch")
    + ("Loop",) * MAX_LOOPS
    + ("Like", "Like", "Share", "Save", "Comment", "Follow", "SoundEngagement")
)
KIND_TYPES: tuple[str, ...] = tuple(event_type_of(r) for r in KIND_RECORDS)
DURATION_KINDS = frozenset({SKIP, WATCH, *range(LOOP, LOOP + MAX_LOOPS)})

# Faults (--malformed-fraction). Byte faults break the encoding; the others are valid Avro with bad values.
FAULT_GARBAGE, FAULT_UNKNOWN_FINGERPRINT, FAULT_TRUNCATED, FAULT_MISSING_ID, FAULT_NEGATIVE_DURATION = (
    1,
    2,
    3,
    4,
    5,
)
BYTE_FAULTS = frozenset({FAULT_GARBAGE, FAULT_UNKNOWN_FINGERPRINT, FAULT_TRUNCATED})

_CDF = {
    "surface": cumulative(tuple(w for _, w in SURFACES)),
    "channel": cumulative(tuple(w for _, w in SHARE_CHANNELS)),
    "sound_action": cumulative(tuple(w for _, w in SOUND_ACTIONS)),
    "follow_action": cumulative(tuple(w for _, w in FOLLOW_ACTIONS)),
    "reason": cumulative(tuple(w for _, w in NOT_INTERESTED_REASONS)),
}
# Comment tones in COMMENTS order (positive, other, negative): each tone's distribution and first index.
_TONES = (POSITIVE_COMMENTS, OTHER_COMMENTS, NEGATIVE_COMMENTS)
_TONE_CDF = tuple(cumulative(tuple(w for _, w in tone)) for tone in _TONES)
_TONE_START = np.cumsum([0, *(len(tone) for tone in _TONES[:-1])])
_OTHER_TONE_SHARE = 0.3  # questions, slang, emoji, other languages: neither clearly positive nor negative
_USER_ACTIVITY_EXPONENT = 0.6  # a few heavy users open many more sessions
@dataclass(frozen=True, kw_only=True)
class ViewBlock:
    """One block of views and their events, as plain lists (the renderers loop over them).

    Per view (index v): user, session, position (in the session's feed), video, and per-kind choices
    (indices into the vocab lists). Per event (index i): view, kind, event_time (epoch ms), fault (0 =
    good). `first_event` numbers the block's first event in the stream; `counts` is events per event
    type (snake_case) plus "malformed", for progress reports.

    `arms`, per view, the experiment arm ids ('experiment:arm', fyp/experiments) its impression carries
    (Impression v2 `arms`). The traffic model leaves it empty (no view is in an experiment); a closed-loop
    generator that assigns users to arms sets it, e.g. `dataclasses.replace(block, arms=[...])`. Empty, or one
    tuple per view.
    """

    first_event: int
    user: list[int]
    locale: list[int]
    session: list[int]
    position: list[int]
    video: list[int]
    surface: list[int]
    dwell_ms: list[int]
    watch_ms: list[int]
    channel: list[int]
    sound_action: list[int]
    follow_action: list[int]
    reason: list[int]
    comment: list[int]
    event_view: list[int]
    event_kind: list[int]
    event_time: list[int]
    event_fault: list[int]
    counts: dict[str, int]
    arms: list[tuple[str, ...]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.arms and len(self.arms) != len(self.user):
            raise ValueError(f"arms: one tuple per view ({len(self.user)}), got {len(self.arms)}")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class TrafficModel:
    """Draws `ViewBlock`s. State: the catalog, the open sessions and the stream's event count."""

    def __init__(self, config: TrafficConfig, seed: int) -> None:
        self.config = config
        self.catalog = Catalog(config, seed)
        self.video_count = config.videos
        self._rng = np.random.default_rng([seed, 0])
        self._video_cdf = zipf_cdf(config.videos, config.zipf_exponent)
        self._user_cdf = zipf_cdf(config.users, _USER_ACTIVITY_EXPONENT)
        # Activity rank -> user id, shuffled so that heavy users are spread over the ids, not u0..u9.
        self._user_of_rank = np.random.default_rng([seed, 3]).permutation(config.users)
        slots = config.session_slots
        self._slot_user = self._draw_users(slots).tolist()
        self._slot_session = list(range(slots))
        self._slot_position = [0] * slots
        self._next_session = slots
        self._events = 0

    def _draw_users(self, n: int) -> np.ndarray:
        return self._user_of_rank[draw(self._user_cdf, self._rng.random(n))]

    def _sessions(self, n: int) -> tuple[list[int], list[int], list[int]]:
        """Pick an open session for each view; a session ends after a view with p = 1/mean views."""
        slot_of = self._rng.integers(len(self._slot_user), size=n).tolist()
        ends = (self._rng.random(n) < 1.0 / self.config.mean_session_views).tolist()
        newcomers = iter(self._draw_users(sum(ends)).tolist())
        users, sessions, positions = [0] * n, [0] * n, [0] * n
        slot_user, slot_session, slot_position = self._slot_user, self._slot_session, self._slot_position
        for i, slot in enumerate(slot_of):
            users[i] = slot_user[slot]
            sessions[i] = slot_session[slot]
            positions[i] = slot_position[slot]
            slot_position[slot] += 1
            if ends[i]:
                slot_user[slot] = next(newcomers)
                slot_session[slot] = self._next_session
                slot_position[slot] = 0
                self._next_session += 1
        return users, sessions, positions

    def _videos(self, users: np.ndarray) -> np.ndarray:
        rng, config, catalog = self._rng, self.config, self.catalog
        n = len(users)
        self.video_count += int(rng.binomial(n, config.new_video_fraction))
        catalog.ensure_videos(self.video_count)
        u = rng.random((n, 4))
        popular = draw(self._video_cdf, u[:, 0])
        # Interest: one of the user's topics, then a video by Zipf popularity within it (a slice of topic_cdf).
        topic = catalog.interests[users, (u[:, 1] * catalog.interests.shape[1]).astype(np.int64)]
        start, end = catalog.topic_start[topic], catalog.topic_start[topic + 1]
        low = np.where(start > 0, catalog.topic_cdf[start - 1], 0.0)
        target = low + u[:, 2] * (catalog.topic_cdf[end - 1] - low)
        at = np.clip(np.searchsorted(catalog.topic_cdf, target, side="right"), start, end - 1)
        popular = np.where(u[:, 3] < config.interest_traffic_fraction, catalog.topic_order[at], popular)
        window = min(config.fresh_window, self.video_count)
        fresh = self.video_count - 1 - rng.integers(window, size=n)
        return np.where(rng.random(n) < config.fresh_traffic_fraction, fresh, popular)

    def next_block(self, n_views: int, now_ms: int) -> ViewBlock:
        """Draw `n_views` views and their events; event times are around `now_ms` (epoch ms)."""
        users, sessions, positions = self._sessions(n_views)
        return self.react(users, sessions, positions, self._videos(np.asarray(users)), now_ms)

    def react(self, users: list[int], sessions: list[int], positions: list[int], video: np.ndarray,
              now_ms: int) -> ViewBlock:
        """The viewers' reactions to the videos shown to them, one view per element: skip or watch, completion,
        loops and engagement by fyp/traffic/behaviour.py. `next_block` calls it on the videos it picks; the
        closed loop (fyp/traffic/closed_loop.py) on the videos a feed service shows. Event times are around
        `now_ms` (epoch ms), as next_block's."""
        rng, config, catalog = self._rng, self.config, self.catalog
        n_views = len(users)
        user_ids = np.asarray(users, dtype=np.int64)
        video = np.asarray(video, dtype=np.int64)
        catalog.ensure_videos(int(video.max()) + 1 if n_views else 0)
        quality, duration = catalog.quality[video], catalog.duration_ms[video]
        topic = catalog.author_topic[catalog.author[video]]
        match = (catalog.interests[user_ids] == topic[:, None]).any(axis=1)
        u = rng.random((n_views, 12))
        skip = u[:, 0] < skip_probability(quality, duration, match)
        complete = ~skip & (u[:, 1] < _sigmoid(complete_logit(quality, duration, match)))
        fraction = np.where(complete, 1.0, partial_fraction(rng.beta(*PARTIAL_BETA, n_views)))
        watch_ms = np.where(skip, 0, np.maximum(1, np.rint(fraction * duration))).astype(np.int64)
        dwell_ms = np.minimum(np.clip(rng.lognormal(np.log(900), 0.6, n_views), 150, 5_000), duration)
        loops_p = _sigmoid(loop_logit(quality, duration, match))
        loops = np.where(
            complete & (u[:, 2] < loops_p), np.minimum(rng.geometric(LOOP_GEOMETRIC_P, n_views), MAX_LOOPS), 0
        )
        # Engagement propensity: grows with the fraction watched, loops, quality and taste; none after a skip.
        z = np.where(skip, -50.0, engagement_logit(fraction, loops, quality, match))

        mask = np.zeros((n_views, SOUND + 1), dtype=bool)
        mask[:, IMPRESSION] = True
        mask[:, SKIP] = skip
        mask[:, NOT_INTERESTED] = skip & (u[:, 3] < 0.03)
        mask[:, WATCH] = ~skip
        mask[:, LOOP : LOOP + MAX_LOOPS] = loops[:, None] > np.arange(MAX_LOOPS)
        mask[:, LIKE] = u[:, 4] < _sigmoid(like_logit(z))
        mask[:, UNLIKE] = mask[:, LIKE] & (u[:, 5] < 0.03)
        mask[:, SHARE] = u[:, 6] < _sigmoid(share_logit(z))
        mask[:, SAVE] = u[:, 7] < _sigmoid(z - 2.6)
        mask[:, COMMENT] = u[:, 8] < _sigmoid(z - 3.2)
        mask[:, FOLLOW] = u[:, 9] < _sigmoid(follow_logit(z))
        mask[:, SOUND] = (catalog.sound[video] >= 0) & (u[:, 10] < _sigmoid(z - 3.0))

        view_time = now_ms - rng.integers(config.jitter_ms + 1, size=n_views)
        late = u[:, 11] < config.late_fraction
        if late.any():
            low = min(60_000, config.late_by_ms)
            view_time = np.where(
                late, view_time - rng.integers(low, config.late_by_ms + 1, size=n_views), view_time
            )
        event_view, event_kind = np.nonzero(mask)  # row-major: grouped by view, in kind order
        rank = (np.cumsum(mask, axis=1) - 1)[event_view, event_kind]
        fault = self._faults(event_kind)

        good = np.bincount(event_kind[fault == 0], minlength=SOUND + 1)
        counts: dict[str, int] = {}
        for kind, n in enumerate(good.tolist()):
            if n:
                counts[KIND_TYPES[kind]] = counts.get(KIND_TYPES[kind], 0) + n
        if bad := int(np.count_nonzero(fault)):
            counts["malformed"] = bad
        first_event = self._events
        self._events += len(event_kind)
        return ViewBlock(
            first_event=first_event,
            user=users,
            locale=catalog.user_locale[users].tolist(),
            session=sessions,
            position=positions,
            video=video.tolist(),
            surface=draw(_CDF["surface"], rng.random(n_views)).tolist(),
            dwell_ms=dwell_ms.astype(np.int64).tolist(),
            watch_ms=watch_ms.tolist(),
            channel=draw(_CDF["channel"], rng.random(n_views)).tolist(),
            sound_action=draw(_CDF["sound_action"], rng.random(n_views)).tolist(),
            follow_action=draw(_CDF["follow_action"], rng.random(n_views)).tolist(),
            reason=draw(_CDF["reason"], rng.random(n_views)).tolist(),
            comment=self._comments(quality, fraction, n_views).tolist(),
            event_view=event_view.tolist(),
            event_kind=event_kind.tolist(),
            event_time=(view_time[event_view] + rank).tolist(),
            event_fault=fault.tolist(),
            counts=counts,
        )

    def _comments(self, quality: np.ndarray, fraction: np.ndarray, n: int) -> np.ndarray:
        """A comment text per view: its tone follows how much the viewer liked the video (quality, share
        watched), so the mean comment sentiment of a video tracks its completion and like rates."""
        rng = self._rng
        positive = (1.0 - _OTHER_TONE_SHARE) * _sigmoid(8.0 * (quality - 0.29) + 3.0 * (fraction - 0.6))
        u = rng.random(n)
        tone = np.where(u < positive, 0, np.where(u < positive + _OTHER_TONE_SHARE, 1, 2))
        within = rng.random(n)
        picks = np.stack([draw(cdf, within) for cdf in _TONE_CDF])  # (tones, n)
        return _TONE_START[tone] + picks[tone, np.arange(n)]

    def _faults(self, kinds: np.ndarray) -> np.ndarray:
        if self.config.malformed_fraction <= 0:
            return np.zeros(len(kinds), dtype=np.int64)
        n = len(kinds)
        fault = np.where(
            self._rng.random(n) < self.config.malformed_fraction, self._rng.integers(1, 6, size=n), 0
        )
        # Only watch, loop and skip have durations to make negative; the others lose an id instead.
        no_duration = ~np.isin(kinds, list(DURATION_KINDS))
        fault[(fault == FAULT_NEGATIVE_DURATION) & no_duration] = FAULT_MISSING_ID
        return fault
