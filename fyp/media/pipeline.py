"""From a local source file to local outputs or a refusal: probe, limits, transcode, fingerprint.

No Kafka and no S3 here (the worker adds those), so every outcome can be tested on files made by ffmpeg.
`stage` picks the part of the ladder (`fyp.media.ladder.stage_ladder`): "playable" (H.264 rungs, audio, pictures,
fingerprint), "extra" (H.265/AV1 rungs only, video-only, no fingerprint) or "all" (everything in one run).
The licence decision of a music match (allow/mute/block) is moderation's to judge (fyp.moderation.verdict turns
it into APPROVE/MUTE_AUDIO/REJECT), with one exception that cannot wait for moderation: a match whose decision
mutes (`fyp.moderation.verdict.mutes_audio`) is transcoded again with silent audio before anything is returned,
so the audio-bearing outputs never leave the work directory and are never published (`Processed.muted`). The
fingerprint is still the original audio's: moderation matches it again and records the mute.
"""

from __future__ import annotations

import logging
import resource
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fyp.media.fingerprint import CatalogueEntry, Fingerprint, MusicMatch, fingerprint_file, match
from fyp.media.ladder import DEFAULT_POLICY, LadderPolicy, Stage, plan_ladder, stage_ladder
from fyp.media.probe import DEFAULT_LIMITS, Limits, MediaInfo, check_limits, probe
from fyp.media.transcode import TranscodeError, TranscodeResult, transcode
from fyp.moderation.verdict import DEFAULT_POLICY as DEFAULT_MODERATION
from fyp.moderation.verdict import ModerationPolicy, mutes_audio

__all__ = ["Processed", "Rejected", "process_source"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Processed:
    """A source that produced outputs. `fingerprint` and `music` are None for a video without audio (and for
    the "extra" stage); `result` is None when the stage had no rungs to make (an "extra" stage of a source too
    small for H.265/AV1). cpu_ms: CPU time of the child processes (ffmpeg, fpcalc), user + system. muted: the
    music_id whose decision silenced the audio of `result` (None: the audio is the source's, or there is none)."""

    info: MediaInfo
    result: TranscodeResult | None
    fingerprint: Fingerprint | None
    music: MusicMatch | None
    elapsed_ms: int
    cpu_ms: int = 0
    muted: str | None = None


@dataclass(frozen=True, kw_only=True)
class Rejected:
    """A source that cannot be published, with a machine reason such as `corrupt` or `too_long:312s`."""

    reason: str
    info: MediaInfo | None
    elapsed_ms: int


def process_source(
    source: Path,
    work_dir: Path,
    *,
    limits: Limits = DEFAULT_LIMITS,
    policy: LadderPolicy = DEFAULT_POLICY,
    catalogue: Sequence[CatalogueEntry] = (),
    on_progress: Callable[[float], None] | None = None,
    stage: Stage = "all",
    moderation: ModerationPolicy = DEFAULT_MODERATION,
) -> Processed | Rejected:
    """Judge and transcode one source into `work_dir/out`, then fingerprint its audio and match the catalogue;
    a match that `moderation` mutes is transcoded again with silent audio (a second ffmpeg run, muted videos only).

    catalogue: reference tracks (empty: fingerprint only). on_progress: 0..1 as ffmpeg advances.
    stage: which part of the ladder (default "all"; see the module doc). moderation: whose music decisions mute
    (default the moderator's default policy).
    """
    started = time.monotonic()
    # Children's CPU: the worker runs one job at a time, so the delta is this job's ffmpeg and fpcalc.
    cpu_before = _children_cpu_s()

    def rejected(reason: str, info: MediaInfo | None) -> Rejected:
        return Rejected(reason=reason, info=info, elapsed_ms=round((time.monotonic() - started) * 1000))

    info = probe(source)
    reason = check_limits(info, limits)
    if reason is not None:
        return rejected(reason, info)
    ladder = stage_ladder(plan_ladder(info, policy), stage)
    if ladder is None:
        return Processed(info=info, result=None, fingerprint=None, music=None,
                         elapsed_ms=round((time.monotonic() - started) * 1000))
    out_dir = work_dir / "out"
    try:
        result = transcode(source, out_dir, info=info, ladder=ladder, on_progress=on_progress,
                           video_only=stage == "extra")
        fingerprint = _fingerprint(out_dir / result.audio) if result.audio else None
    except TranscodeError as exc:
        return rejected(exc.reason, info)
    music = match(fingerprint, catalogue) if fingerprint and catalogue else None
    muted = music.music_id if music is not None and mutes_audio(music.decision, moderation) else None
    if muted is not None:
        # Encoding again is simpler and safer than patching the muxed audio segments and both manifests; it
        # costs one more transcode for the few videos whose music is muted, and none for the others.
        try:
            result = transcode(source, out_dir, info=info, ladder=ladder, mute_audio=True)
        except TranscodeError as exc:
            return rejected(exc.reason, info)
    elapsed_ms = round((time.monotonic() - started) * 1000)
    cpu_ms = round((_children_cpu_s() - cpu_before) * 1000)
    return Processed(info=info, result=result, fingerprint=fingerprint, music=music, elapsed_ms=elapsed_ms,
                     cpu_ms=cpu_ms, muted=muted)


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _fingerprint(audio: Path) -> Fingerprint | None:
    # Fail open: audio fpcalc cannot read (e.g. near-silence) should not cost the creator the upload;
    # the video is published unmatched and the log says why.
    try:
        return fingerprint_file(audio)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        log.warning("no fingerprint for %s: %s", audio, exc)
        return None
