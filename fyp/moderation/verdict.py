"""Combine a video's moderation signals into one verdict with its reasons. Pure: no I/O, no models.

Each signal proposes a verdict; the most severe wins (REJECT > AGE_RESTRICT > MUTE_AUDIO > APPROVE) and every
proposal's reason is kept, most severe first. `actions` lists every action that applies (REJECT, AGE_RESTRICT,
MUTE_AUDIO), so a video that is both age-restricted and muted says so; the single `verdict` (the most severe
action, or APPROVE) stays for readers of the first ModerationResult schema.

Muting is applied before anything is published: the transcoder asks `mutes_audio` of its own catalogue match and
publishes silent audio (docs/MODERATION.md, "Mute"). The verdict then records what was published: `audio_muted`
set means the published audio is silence (MUTE_AUDIO, `music_muted:<id>`); a `mute` match whose audio was not
silenced cannot be made good after publishing, so it fails closed (REJECT, `music_unmuted:<id>`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from fyp.moderation.phash import DuplicateMatch

__all__ = [
    "DEFAULT_POLICY",
    "MUSIC_DECISIONS",
    "TEXT_CATEGORIES",
    "ModerationDecision",
    "ModerationPolicy",
    "ModerationSignals",
    "MusicMatchLike",
    "TextHit",
    "Verdict",
    "decide",
    "mutes_audio",
]


class Verdict(StrEnum):
    """The ModerationResult verdict enum, least to most severe."""

    APPROVE = "APPROVE"
    MUTE_AUDIO = "MUTE_AUDIO"
    AGE_RESTRICT = "AGE_RESTRICT"
    REJECT = "REJECT"

    @property
    def severity(self) -> int:
        return list(Verdict).index(self)


# The categories of the blocked-terms list (fyp/moderation/data/blocked_terms.tsv).
TEXT_CATEGORIES = ("profanity", "sexual", "hate", "harassment", "scam")


@dataclass(frozen=True, kw_only=True)
class TextHit:
    """A blocked term found in on-screen or caption text, as the list spells it (a trailing `*` is a prefix
    term). Declared here, beside the categories, because the verdict reads hits and the OCR check makes them."""

    category: str
    term: str


# The audio fingerprint matcher's licence decisions.
MUSIC_DECISIONS = ("allow", "mute", "block")


class MusicMatchLike(Protocol):
    """The audio fingerprint matcher's `MusicMatch`; only `decision` and `music_id` are read here."""

    @property
    def music_id(self) -> str: ...

    @property
    def score(self) -> float: ...

    @property
    def decision(self) -> str: ...


def _default_text_verdicts() -> Mapping[str, Verdict]:
    return MappingProxyType(
        {
            "profanity": Verdict.AGE_RESTRICT,
            "sexual": Verdict.AGE_RESTRICT,
            "hate": Verdict.REJECT,
            "harassment": Verdict.REJECT,
            "scam": Verdict.REJECT,
        }
    )


def _default_music_verdicts() -> Mapping[str, Verdict]:
    return MappingProxyType({"allow": Verdict.APPROVE, "mute": Verdict.MUTE_AUDIO, "block": Verdict.REJECT})


@dataclass(frozen=True, kw_only=True)
class ModerationPolicy:
    """Thresholds and mappings from signals to verdicts.

    nsfw_restrict_at: an open_nsfw score (0..1, max over frames) at or above this age-restricts (default 0.5,
        the model's own decision threshold; Yahoo calls 0.2..0.8 uncertain).
    nsfw_reject_at: at or above this rejects (default 0.8, Yahoo's "highly probable NSFW").
    unscored_verdict: when no NSFW score exists (no frame could be decoded) (default AGE_RESTRICT: fail
        closed, without rejecting a video for an infrastructure fault).
    violence_restrict_at: a violence/gore score (0..1, max over frames) at or above this age-restricts
        (default 0.5: an even-odds probability, as for NSFW). No violence model runs today
        (fyp/moderation/violence.py), so these two are checked against a chosen model's own guidance then.
    violence_reject_at: at or above this rejects (default 0.8: only when the model is confident, since news,
        sport and film clips are violent but allowed behind an age gate).
    text_verdicts: blocked-term category -> verdict (default profanity/sexual AGE_RESTRICT, hate/harassment/
        scam REJECT); must cover every category in TEXT_CATEGORIES.
    music_verdicts: the audio matcher's licence decision -> verdict (default allow APPROVE, mute MUTE_AUDIO,
        block REJECT). The matcher's score is not re-thresholded here: its decision already did that.
    near_duplicate_verdict: for a near-duplicate of an earlier video that was not rejected (default APPROVE:
        recorded as a reason and in `near_duplicate_of` so that ranking can de-duplicate; creators re-post).
    reupload_verdict: for a near-duplicate of a previously rejected video (default REJECT).
    unmuted_verdict: for a match whose decision mutes, when the published audio was not silenced (default
        REJECT: the audio-bearing renditions must never become viewable).

    >>> ModerationPolicy(nsfw_reject_at=0.3)
    Traceback (most recent call last):
    ...
    ValueError: need 0 <= nsfw_restrict_at (0.5) <= nsfw_reject_at (0.3) <= 1
    >>> ModerationPolicy(violence_restrict_at=0.9)
    Traceback (most recent call last):
    ...
    ValueError: need 0 <= violence_restrict_at (0.9) <= violence_reject_at (0.8) <= 1
    """

    nsfw_restrict_at: float = 0.5
    nsfw_reject_at: float = 0.8
    unscored_verdict: Verdict = Verdict.AGE_RESTRICT
    violence_restrict_at: float = 0.5
    violence_reject_at: float = 0.8
    text_verdicts: Mapping[str, Verdict] = field(default_factory=_default_text_verdicts)
    music_verdicts: Mapping[str, Verdict] = field(default_factory=_default_music_verdicts)
    near_duplicate_verdict: Verdict = Verdict.APPROVE
    reupload_verdict: Verdict = Verdict.REJECT
    unmuted_verdict: Verdict = Verdict.REJECT

    def __post_init__(self) -> None:
        for signal in ("nsfw", "violence"):
            restrict, reject = getattr(self, f"{signal}_restrict_at"), getattr(self, f"{signal}_reject_at")
            if not 0.0 <= restrict <= reject <= 1.0:
                raise ValueError(
                    f"need 0 <= {signal}_restrict_at ({restrict}) <= {signal}_reject_at ({reject}) <= 1"
                )
        for name, keys in (("text_verdicts", TEXT_CATEGORIES), ("music_verdicts", MUSIC_DECISIONS)):
            mapping = getattr(self, name)
            if set(mapping) != set(keys):
                raise ValueError(f"{name} must map exactly {sorted(keys)}, got {sorted(mapping)}")
            # Frozen all the way down: a policy shared by threads cannot be edited in place.
            object.__setattr__(self, name, MappingProxyType({k: Verdict(v) for k, v in mapping.items()}))


DEFAULT_POLICY = ModerationPolicy()


@dataclass(frozen=True, kw_only=True)
class ModerationSignals:
    """What the checks found for one video.

    nsfw_score: max open_nsfw score over the frames, 0..1; None when it could not be computed.
    violence_score: max violence/gore score over the frames, 0..1; None when no violence model ran, which is
        always today (fyp/moderation/violence.py), and then it proposes nothing.
    text_hits: blocked terms found in on-screen text.
    music: the audio matcher's match, None when no catalogue track matched.
    near_duplicate: an earlier, not rejected video this one nearly duplicates.
    reupload_of_rejected: an earlier rejected video this one nearly duplicates.
    audio_muted: the music_id whose decision made the transcoder publish silent audio (TranscodeCompleted
        `audio_muted`); None when the published audio is the upload's.
    """

    nsfw_score: float | None
    violence_score: float | None = None
    text_hits: tuple[TextHit, ...] = ()
    music: MusicMatchLike | None = None
    near_duplicate: DuplicateMatch | None = None
    reupload_of_rejected: DuplicateMatch | None = None
    audio_muted: str | None = None

    def __post_init__(self) -> None:
        if self.audio_muted is not None and (not isinstance(self.audio_muted, str) or not self.audio_muted):
            raise ValueError(f"audio_muted must be a non-empty music_id or None, got {self.audio_muted!r}")
        for name in ("nsfw_score", "violence_score"):
            score = getattr(self, name)
            if score is not None and not 0.0 <= score <= 1.0:
                raise ValueError(f"{name} must be in 0..1, got {score}")


@dataclass(frozen=True, kw_only=True)
class ModerationDecision:
    """The verdict and why; reasons are `code` or `code:detail` strings, the deciding one first. actions: every
    action that applies (no APPROVE), most severe first; the verdict is the first, or APPROVE when none."""

    verdict: Verdict
    reasons: tuple[str, ...]
    actions: tuple[Verdict, ...] = ()


def mutes_audio(decision: str, policy: ModerationPolicy = DEFAULT_POLICY) -> bool:
    """Whether a catalogue match with this licence decision must have its audio silenced before publishing:
    the transcoder asks this of its own match, so the rule lives with the verdict's.

    >>> mutes_audio("mute"), mutes_audio("allow")
    (True, False)
    """
    if decision not in policy.music_verdicts:
        raise ValueError(f"unknown music decision {decision!r}; expected one of {MUSIC_DECISIONS}")
    return policy.music_verdicts[decision] is Verdict.MUTE_AUDIO


def _proposals(signals: ModerationSignals, policy: ModerationPolicy) -> list[tuple[Verdict, str]]:
    found: list[tuple[Verdict, str]] = []
    if signals.reupload_of_rejected is not None:
        found.append(
            (policy.reupload_verdict, f"reupload_of_rejected:{signals.reupload_of_rejected.video_id}")
        )
    score = signals.nsfw_score
    if score is None:
        found.append((policy.unscored_verdict, "nsfw_unscored"))
    elif score >= policy.nsfw_reject_at:
        found.append((Verdict.REJECT, "nsfw_reject"))
    elif score >= policy.nsfw_restrict_at:
        found.append((Verdict.AGE_RESTRICT, "nsfw_age_restrict"))
    found += _violence_proposals(signals.violence_score, policy)
    for hit in signals.text_hits:
        if hit.category not in policy.text_verdicts:
            raise ValueError(f"unknown text category {hit.category!r}")
        found.append((policy.text_verdicts[hit.category], f"text_{hit.category}:{hit.term}"))
    found += _music_proposals(signals, policy)
    if signals.near_duplicate is not None:
        found.append((policy.near_duplicate_verdict, f"near_duplicate:{signals.near_duplicate.video_id}"))
    return found


def _violence_proposals(score: float | None, policy: ModerationPolicy) -> list[tuple[Verdict, str]]:
    """Like NSFW, except that no score proposes nothing: no violence model runs yet, and failing closed on an
    absent model would age-restrict every video. Frames that cannot be decoded already fail closed through
    `nsfw_unscored`."""
    if score is None:
        return []
    if score >= policy.violence_reject_at:
        return [(Verdict.REJECT, "violence_reject")]
    if score >= policy.violence_restrict_at:
        return [(Verdict.AGE_RESTRICT, "violence_age_restrict")]
    return []


def _music_proposals(signals: ModerationSignals, policy: ModerationPolicy) -> list[tuple[Verdict, str]]:
    """The music match's decision, judged against what was published: silence is a fact (MUTE_AUDIO even if the
    catalogue changed since), and a mute that was not applied fails closed."""
    found: list[tuple[Verdict, str]] = []
    if signals.audio_muted is not None:
        found.append((Verdict.MUTE_AUDIO, f"music_muted:{signals.audio_muted}"))
    music = signals.music
    if music is None:
        return found
    if mutes_audio(music.decision, policy):
        if signals.audio_muted is None:
            found.append((policy.unmuted_verdict, f"music_unmuted:{music.music_id}"))
    elif music.decision != "allow":
        code = "music_muted" if music.decision == "mute" else "music_blocked"
        found.append((policy.music_verdicts[music.decision], f"{code}:{music.music_id}"))
    return found


def decide(signals: ModerationSignals, policy: ModerationPolicy = DEFAULT_POLICY) -> ModerationDecision:
    """The most severe verdict any signal proposes, with every reason, most severe first.

    >>> decide(ModerationSignals(nsfw_score=0.01))
    ModerationDecision(verdict=<Verdict.APPROVE: 'APPROVE'>, reasons=(), actions=())
    >>> decide(ModerationSignals(nsfw_score=0.93)).reasons
    ('nsfw_reject',)
    >>> [a.value for a in decide(ModerationSignals(nsfw_score=0.6, audio_muted="m1")).actions]
    ['AGE_RESTRICT', 'MUTE_AUDIO']
    """
    found = _proposals(signals, policy)
    found.sort(key=lambda pair: -pair[0].severity)  # stable: equal severities keep the signal order
    actions = tuple(dict.fromkeys(v for v, _ in found if v is not Verdict.APPROVE))
    verdict = actions[0] if actions else Verdict.APPROVE
    return ModerationDecision(verdict=verdict, reasons=tuple(reason for _, reason in found), actions=actions)
