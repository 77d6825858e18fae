"""Muting before publishing: a catalogue track whose decision is `mute` makes the transcode's audio silence, with
the same streams and manifests (docs/MODERATION.md, "Mute"). Every input is generated with ffmpeg."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import pytest

from fyp.media.fingerprint import build_entry
from fyp.media.ladder import LadderPolicy, plan_ladder
from fyp.media.loudness import audio_levels
from fyp.media.pipeline import Processed, process_source
from fyp.media.probe import MediaInfo, sniff
from fyp.media.transcode import build_command

# Two sweeping tones: structured like music (a pure sine's fingerprint is nearly constant).
MELODY = "0.5*sin(2*PI*(300+200*sin(2*PI*0.3*t))*t)+0.3*sin(2*PI*(800+300*sin(2*PI*0.7*t))*t)"
H264_ONLY = LadderPolicy(extra_codecs={})


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True, timeout=120)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An 8 s melody (the catalogue's track) and a 6 s 160x120 clip carrying 6 s of it."""
    d = tmp_path_factory.mktemp("mute")
    track = d / "track.wav"
    _ffmpeg("-f", "lavfi", "-i", f"aevalsrc='{MELODY}':s=44100:d=8", str(track))
    video = d / "clip.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=15:duration=6", "-i", str(track), "-t", "6",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(video))
    return {"track": track, "video": video}


def _info(has_audio: bool) -> MediaInfo:
    return MediaInfo(size_bytes=1, sniffed=sniff(b""), display_width=320, display_height=240, fps=Fraction(30),
                     duration_ms=3000, has_audio=has_audio)


def test_a_muted_command_filters_every_audio_output_to_silence_and_nothing_else() -> None:
    info = _info(True)
    ladder = plan_ladder(info, H264_ONLY)
    plain = build_command(Path("in.mp4"), Path("out"), info=info, ladder=ladder)
    muted = build_command(Path("in.mp4"), Path("out"), info=info, ladder=ladder, mute_audio=True)
    assert "volume=0" not in plain
    assert muted.count("volume=0") == 2  # the DASH/HLS audio stream and audio.m4a
    # Same maps, encoders and outputs: only the filters differ, so the structure players see is the same.
    assert [a for a in muted if a not in ("-af", "volume=0")] == plain


def _process(clip: dict[str, Path], tmp: Path, decision: str) -> Processed:
    entry = build_entry(clip["track"], music_id="it-track", title="Sweeps", decision=decision)
    outcome = process_source(clip["video"], tmp, policy=H264_ONLY, catalogue=[entry], stage="playable")
    assert isinstance(outcome, Processed), outcome
    return outcome


def test_a_mute_match_is_transcoded_to_silence_with_the_same_streams(clip, tmp_path: Path) -> None:
    loud = _process(clip, tmp_path / "allow", "allow")
    muted = _process(clip, tmp_path / "mute", "mute")
    assert loud.muted is None and muted.muted == "it-track"
    # The fingerprint is the original audio's, so moderation matches it again and records the mute.
    assert muted.music is not None and muted.music.decision == "mute"
    assert muted.fingerprint is not None and muted.fingerprint.values == loud.fingerprint.values
    for outcome, silent in ((loud, False), (muted, True)):
        out = outcome.result.out_dir
        for target in (out / outcome.result.hls_master, out / outcome.result.dash_manifest, out / "audio.m4a"):
            levels = audio_levels(target)
            assert len(levels) == 1 and levels[0].codec == "aac", target
            assert levels[0].silent is silent, (target, levels)
    # Same layout for the player: the same files, the audio group still in the master playlist.
    loud_files = sorted(p.relative_to(loud.result.out_dir) for p in loud.result.files())
    assert sorted(p.relative_to(muted.result.out_dir) for p in muted.result.files()) == loud_files
    assert "TYPE=AUDIO" in (muted.result.out_dir / muted.result.hls_master).read_text()


def test_a_block_match_is_not_muted_here_but_left_to_moderation(clip, tmp_path: Path) -> None:
    outcome = _process(clip, tmp_path, "block")
    assert outcome.muted is None and outcome.music.decision == "block"
