"""The verdict table: signal combinations -> verdict and reasons (pure, no models).

An explicit video cannot be shipped as a test input, so the "explicit content is rejected" path is tested
here with the NSFW score injected at the verdict level; the model itself is tested on benign frames only.
"""

from __future__ import annotations

import pytest

from fyp.media.fingerprint import MusicMatch as Music
from fyp.moderation.ocr import TextHit
from fyp.moderation.phash import DuplicateMatch
from fyp.moderation.verdict import (
    ModerationPolicy,
    ModerationSignals,
    Verdict,
    decide,
    mutes_audio,
)


def dup(video_id: str) -> DuplicateMatch:
    return DuplicateMatch(video_id=video_id, query_match=1.0, target_match=1.0, min_distance=4)


PROFANITY = TextHit(category="profanity", term="shit*")
SCAM = TextHit(category="scam", term="free followers")
HATE = TextHit(category="hate", term="white power")

CASES = [
    # id, signals, verdict, reasons
    ("clean", ModerationSignals(nsfw_score=0.01), Verdict.APPROVE, ()),
    ("nsfw just under restrict", ModerationSignals(nsfw_score=0.4999), Verdict.APPROVE, ()),
    ("nsfw at restrict", ModerationSignals(nsfw_score=0.5), Verdict.AGE_RESTRICT, ("nsfw_age_restrict",)),
    (
        "nsfw just under reject",
        ModerationSignals(nsfw_score=0.7999),
        Verdict.AGE_RESTRICT,
        ("nsfw_age_restrict",),
    ),
    ("explicit (injected score)", ModerationSignals(nsfw_score=0.97), Verdict.REJECT, ("nsfw_reject",)),
    ("nsfw at reject", ModerationSignals(nsfw_score=0.8), Verdict.REJECT, ("nsfw_reject",)),
    ("unscored fails closed", ModerationSignals(nsfw_score=None), Verdict.AGE_RESTRICT, ("nsfw_unscored",)),
    (
        "profanity restricts",
        ModerationSignals(nsfw_score=0.0, text_hits=(PROFANITY,)),
        Verdict.AGE_RESTRICT,
        ("text_profanity:shit*",),
    ),
    (
        "scam rejects",
        ModerationSignals(nsfw_score=0.0, text_hits=(SCAM,)),
        Verdict.REJECT,
        ("text_scam:free followers",),
    ),
    (
        "reject reason sorts before restrict reason",
        ModerationSignals(nsfw_score=0.0, text_hits=(PROFANITY, HATE)),
        Verdict.REJECT,
        ("text_hate:white power", "text_profanity:shit*"),
    ),
    (
        "music allowed adds nothing",
        ModerationSignals(nsfw_score=0.0, music=Music(music_id="m1", score=0.9, decision="allow")),
        Verdict.APPROVE,
        (),
    ),
    (
        "music mute, published silent",
        ModerationSignals(nsfw_score=0.0, music=Music(music_id="m1", score=0.9, decision="mute"), audio_muted="m1"),
        Verdict.MUTE_AUDIO,
        ("music_muted:m1",),
    ),
    (
        "music mute not applied before publishing fails closed",
        ModerationSignals(nsfw_score=0.0, music=Music(music_id="m1", score=0.9, decision="mute")),
        Verdict.REJECT,
        ("music_unmuted:m1",),
    ),
    (
        "silent audio is a mute even if the catalogue no longer matches",
        ModerationSignals(nsfw_score=0.0, audio_muted="m1"),
        Verdict.MUTE_AUDIO,
        ("music_muted:m1",),
    ),
    (
        "music block",
        ModerationSignals(nsfw_score=0.0, music=Music(music_id="m2", score=0.7, decision="block")),
        Verdict.REJECT,
        ("music_blocked:m2",),
    ),
    (
        "age restrict outranks mute, both reasons kept",
        ModerationSignals(nsfw_score=0.6, music=Music(music_id="m1", score=0.9, decision="mute"), audio_muted="m1"),
        Verdict.AGE_RESTRICT,
        ("nsfw_age_restrict", "music_muted:m1"),
    ),
    (
        "near duplicate is only flagged",
        ModerationSignals(nsfw_score=0.0, near_duplicate=dup("v0")),
        Verdict.APPROVE,
        ("near_duplicate:v0",),
    ),
    (
        "re-upload of a rejected video",
        ModerationSignals(nsfw_score=0.0, reupload_of_rejected=dup("bad1")),
        Verdict.REJECT,
        ("reupload_of_rejected:bad1",),
    ),
    (
        "everything at once",
        ModerationSignals(
            nsfw_score=0.9,
            text_hits=(PROFANITY,),
            music=Music(music_id="m1", score=0.9, decision="mute"),
            near_duplicate=dup("v0"),
            audio_muted="m1",
        ),
        Verdict.REJECT,
        ("nsfw_reject", "text_profanity:shit*", "music_muted:m1", "near_duplicate:v0"),
    ),
]


@pytest.mark.parametrize(("signals", "verdict", "reasons"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_verdict_table(signals: ModerationSignals, verdict: Verdict, reasons: tuple[str, ...]) -> None:
    decision = decide(signals)
    assert decision.verdict is verdict
    assert decision.reasons == reasons


# The actions that apply, beside the single verdict: the most severe first, each once, never APPROVE.
ACTION_CASES = [
    ("approve has none", ModerationSignals(nsfw_score=0.0), ()),
    ("near duplicate is no action", ModerationSignals(nsfw_score=0.0, near_duplicate=dup("v0")), ()),
    ("mute alone", ModerationSignals(nsfw_score=0.0, audio_muted="m1"), (Verdict.MUTE_AUDIO,)),
    ("age restrict and mute", ModerationSignals(nsfw_score=0.6, audio_muted="m1"),
     (Verdict.AGE_RESTRICT, Verdict.MUTE_AUDIO)),
    ("reject keeps the others", ModerationSignals(nsfw_score=0.9, text_hits=(PROFANITY,), audio_muted="m1"),
     (Verdict.REJECT, Verdict.AGE_RESTRICT, Verdict.MUTE_AUDIO)),
    ("two restricts are one action", ModerationSignals(nsfw_score=0.6, text_hits=(PROFANITY,)),
     (Verdict.AGE_RESTRICT,)),
]


@pytest.mark.parametrize(("signals", "actions"), [c[1:] for c in ACTION_CASES], ids=[c[0] for c in ACTION_CASES])
def test_actions_list_every_decision_and_the_verdict_is_the_first(
    signals: ModerationSignals, actions: tuple[Verdict, ...]
) -> None:
    decision = decide(signals)
    assert decision.actions == actions
    assert decision.verdict is (actions[0] if actions else Verdict.APPROVE)


@pytest.mark.parametrize(("decision", "mutes"), [("allow", False), ("mute", True), ("block", False)])
def test_the_transcoder_mutes_exactly_the_decisions_the_verdict_mutes(decision: str, mutes: bool) -> None:
    assert mutes_audio(decision) is mutes


def test_a_policy_that_mutes_blocked_music_mutes_it_in_the_transcoder_too() -> None:
    policy = ModerationPolicy(music_verdicts={"allow": Verdict.APPROVE, "mute": Verdict.MUTE_AUDIO,
                                              "block": Verdict.MUTE_AUDIO})
    assert mutes_audio("block", policy)


def test_unknown_music_decision_and_empty_muted_id_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown music decision 'loud'"):
        mutes_audio("loud")
    with pytest.raises(ValueError, match="audio_muted must be a non-empty music_id"):
        ModerationSignals(nsfw_score=0.0, audio_muted="")


def test_policy_changes_the_outcome() -> None:
    strict = ModerationPolicy(
        nsfw_restrict_at=0.2,
        near_duplicate_verdict=Verdict.REJECT,
        text_verdicts={
            "profanity": Verdict.REJECT,
            "sexual": Verdict.REJECT,
            "hate": Verdict.REJECT,
            "harassment": Verdict.REJECT,
            "scam": Verdict.REJECT,
        },
    )
    assert decide(ModerationSignals(nsfw_score=0.3), strict).verdict is Verdict.AGE_RESTRICT
    assert decide(ModerationSignals(nsfw_score=0.0, text_hits=(PROFANITY,)), strict).verdict is Verdict.REJECT
    assert (
        decide(ModerationSignals(nsfw_score=0.0, near_duplicate=dup("v")), strict).verdict is Verdict.REJECT
    )


def test_verdict_symbols_match_the_avro_enum() -> None:
    import json
    from pathlib import Path

    schema = json.loads((Path(__file__).parents[4] / "schemas/avro/ModerationResult.avsc").read_text())
    (field,) = [f for f in schema["fields"] if f["name"] == "verdict"]
    assert set(field["type"]["symbols"]) == {v.value for v in Verdict}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"nsfw_restrict_at": 0.9, "nsfw_reject_at": 0.8}, "nsfw_restrict_at"),
        ({"nsfw_reject_at": 1.5}, "nsfw_reject_at"),
        ({"text_verdicts": {"profanity": Verdict.REJECT}}, "text_verdicts must map exactly"),
        ({"music_verdicts": {"allow": Verdict.APPROVE}}, "music_verdicts must map exactly"),
    ],
)
def test_policy_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ModerationPolicy(**kwargs)


def test_policy_mappings_are_read_only() -> None:
    policy = ModerationPolicy()
    with pytest.raises(TypeError):
        policy.text_verdicts["hate"] = Verdict.APPROVE  # type: ignore[index]


@pytest.mark.parametrize("score", [-0.1, 1.01])
def test_signals_reject_scores_outside_0_1(score: float) -> None:
    with pytest.raises(ValueError, match="nsfw_score"):
        ModerationSignals(nsfw_score=score)


def test_unknown_music_decision_is_an_error() -> None:
    music = Music(music_id="m", score=1.0, decision="maybe")  # type: ignore[arg-type]
    signals = ModerationSignals(nsfw_score=0.0, music=music)
    with pytest.raises(ValueError, match="unknown music decision"):
        decide(signals)
