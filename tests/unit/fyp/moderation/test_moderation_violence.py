"""The violence signal's verdict rule (pure, scores injected) and the `ViolenceScore` contract.

No violence model ships in a usable package (fyp/moderation/violence.py), so there is no model to score
generated images with; these tests pin the rule a classifier will feed, and that its absence changes nothing.
"""

from __future__ import annotations

import pytest

from fyp.moderation.ocr import TextHit
from fyp.moderation.verdict import ModerationPolicy, ModerationSignals, Verdict, decide
from fyp.moderation.violence import ViolenceScore

CASES = [
    # id, signals, verdict, reasons
    ("no violence model ran", ModerationSignals(nsfw_score=0.01), Verdict.APPROVE, ()),
    ("violence low", ModerationSignals(nsfw_score=0.01, violence_score=0.1), Verdict.APPROVE, ()),
    ("violence just under restrict", ModerationSignals(nsfw_score=0.0, violence_score=0.4999), Verdict.APPROVE, ()),
    (
        "violence at restrict",
        ModerationSignals(nsfw_score=0.0, violence_score=0.5),
        Verdict.AGE_RESTRICT,
        ("violence_age_restrict",),
    ),
    (
        "violence just under reject",
        ModerationSignals(nsfw_score=0.0, violence_score=0.7999),
        Verdict.AGE_RESTRICT,
        ("violence_age_restrict",),
    ),
    ("violence at reject", ModerationSignals(nsfw_score=0.0, violence_score=0.8), Verdict.REJECT, ("violence_reject",)),
    (
        "violence and nsfw both restrict: both reasons, nsfw first",
        ModerationSignals(nsfw_score=0.6, violence_score=0.6),
        Verdict.AGE_RESTRICT,
        ("nsfw_age_restrict", "violence_age_restrict"),
    ),
    (
        "violence reject outranks an nsfw age restriction",
        ModerationSignals(nsfw_score=0.6, violence_score=0.9),
        Verdict.REJECT,
        ("violence_reject", "nsfw_age_restrict"),
    ),
    (
        "unscored nsfw still fails closed without a violence score",
        ModerationSignals(nsfw_score=None),
        Verdict.AGE_RESTRICT,
        ("nsfw_unscored",),
    ),
    (
        "violence restrict beside a hate text reject",
        ModerationSignals(
            nsfw_score=0.0, violence_score=0.55, text_hits=(TextHit(category="hate", term="white power"),)
        ),
        Verdict.REJECT,
        ("text_hate:white power", "violence_age_restrict"),
    ),
]


@pytest.mark.parametrize(("signals", "verdict", "reasons"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_violence_verdict_table(signals: ModerationSignals, verdict: Verdict, reasons: tuple[str, ...]) -> None:
    decision = decide(signals)
    assert decision.verdict is verdict
    assert decision.reasons == reasons


def test_violence_thresholds_come_from_the_policy() -> None:
    strict = ModerationPolicy(violence_restrict_at=0.2, violence_reject_at=0.4)
    signals = ModerationSignals(nsfw_score=0.0, violence_score=0.3)
    assert decide(signals).verdict is Verdict.APPROVE
    assert decide(signals, strict).reasons == ("violence_age_restrict",)
    assert decide(ModerationSignals(nsfw_score=0.0, violence_score=0.4), strict).verdict is Verdict.REJECT


def test_the_default_violence_thresholds_are_the_documented_ones() -> None:
    policy = ModerationPolicy()
    assert (policy.violence_restrict_at, policy.violence_reject_at) == (0.5, 0.8)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"violence_restrict_at": 0.9}, r"violence_restrict_at \(0.9\) <= violence_reject_at \(0.8\)"),
        ({"violence_reject_at": 1.5}, r"violence_reject_at \(1.5\) <= 1"),
        ({"violence_restrict_at": -0.1}, r"0 <= violence_restrict_at \(-0.1\)"),
    ],
)
def test_violence_policy_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ModerationPolicy(**kwargs)


@pytest.mark.parametrize("score", [-0.01, 1.01])
def test_violence_scores_outside_0_1_are_refused(score: float) -> None:
    with pytest.raises(ValueError, match=r"violence_score must be in 0\.\.1"):
        ModerationSignals(nsfw_score=0.0, violence_score=score)


def test_a_violence_score_is_the_max_of_its_frames() -> None:
    assert ViolenceScore(score=0.7, frame_scores=(0.1, 0.7, 0.3)).score == 0.7
    with pytest.raises(ValueError, match="must be the maximum frame score"):
        ViolenceScore(score=0.3, frame_scores=(0.1, 0.7))
    with pytest.raises(ValueError, match="at least one frame"):
        ViolenceScore(score=0.0, frame_scores=())
    with pytest.raises(ValueError, match=r"in 0..1"):
        ViolenceScore(score=2.0, frame_scores=(2.0,))
