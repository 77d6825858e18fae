"""The two-stage ladder's pure parts (docs/UPLOADS.md, "Two stages"): which rungs each stage makes, the
video-only second command, composing one HLS master and one DASH manifest from both stages, publishing the
full ladder next to the playable set, and the lifecycle's handling of the second stage."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path

import pytest
from test_media_publish import T0, MemoryStore, fake_result

from fyp.media.ladder import LadderPolicy, plan_ladder, stage_ladder
from fyp.media.manifests import MPD_NS, compose_dash, compose_hls_master, relative_prefix
from fyp.media.probe import MediaInfo, sniff
from fyp.media.publish import FULL_MANIFEST_NAME, clean_stale_runs, find_published, manifest_key, publish
from fyp.media.transcode import build_command, filter_graph


def info(width: int, height: int, *, has_audio: bool = False) -> MediaInfo:
    return MediaInfo(size_bytes=1, sniffed=sniff(b""), display_width=width, display_height=height, fps=30,
                     duration_ms=4000, has_audio=has_audio)


# --- ladder per stage ----------------------------------------------------------------------------------------


def test_stages_split_the_ladder_by_codec_and_keep_its_timing() -> None:
    full = plan_ladder(info(1920, 1080))
    playable, extra = stage_ladder(full, "playable"), stage_ladder(full, "extra")
    assert [r.name for r in playable.rungs] == ["h264_1080p", "h264_720p", "h264_480p", "h264_360p"]
    assert [r.name for r in extra.rungs] == ["h265_1080p", "av1_1080p"]
    assert set(playable.rungs) | set(extra.rungs) == set(full.rungs)
    assert (playable.fps, playable.gop_frames) == (extra.fps, extra.gop_frames) == (Fraction(30), 60)
    assert stage_ladder(full, "all") is full


def test_no_extra_stage_without_extra_codecs_or_for_tiny_pictures() -> None:
    assert stage_ladder(plan_ladder(info(1280, 720), LadderPolicy(extra_codecs={})), "extra") is None
    assert stage_ladder(plan_ladder(info(160, 120)), "extra") is None  # under min_extra_side
    with pytest.raises(ValueError, match="unknown stage"):
        stage_ladder(plan_ladder(info(320, 240)), "hd")  # type: ignore[arg-type]


def test_video_only_command_has_no_audio_cover_or_posters() -> None:
    source = info(1280, 720, has_audio=True)
    extra = stage_ladder(plan_ladder(source), "extra")
    graph = filter_graph(extra, cover_frame=30, posters=(10,), stills=False)
    assert "split=2[s0][s1]" in graph and "[cover]" not in graph and "select" not in graph
    argv = build_command(Path("/in/s"), Path("/out"), info=source, ladder=extra, video_only=True)
    assert argv.count("-i") == 1 and "0:a:0" not in argv
    assert argv[-1] == "/out/stream/manifest.mpd"  # the dash output is the last one
    assert argv[argv.index("-adaptation_sets") + 1] == "id=0,streams=0 id=1,streams=1"
    assert "-force_key_frames" in argv  # same key frames as the playable stage: segments line up


# --- manifest composition ------------------------------------------------------------------------------------

BASE_HLS = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="group_A1",NAME="audio_2",DEFAULT=YES,URI="media_2.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=1169925,RESOLUTION=640x360,CODECS="avc1.64001e,mp4a.40.2",AUDIO="group_A1"
media_0.m3u8

#EXT-X-STREAM-INF:BANDWIDTH=500000,RESOLUTION=480x270,CODECS="avc1.640015,mp4a.40.2",AUDIO="group_A1"
media_1.m3u8
"""
EXTRA_HLS = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-STREAM-INF:BANDWIDTH=624672,RESOLUTION=640x360,CODECS="hvc1"
media_0.m3u8

#EXT-X-STREAM-INF:BANDWIDTH=519232,RESOLUTION=640x360,CODECS="av01.0.01M.08"
media_1.m3u8
"""


def test_hls_master_lists_both_stages_and_joins_the_audio_group() -> None:
    composed = compose_hls_master(BASE_HLS, EXTRA_HLS, base_prefix="../../RA/stream/", audio_bandwidth=128000)
    lines = composed.splitlines()
    uris = [line for line in lines if line and not line.startswith("#")]
    assert uris == ["../../RA/stream/media_0.m3u8", "../../RA/stream/media_1.m3u8", "media_0.m3u8", "media_1.m3u8"]
    assert 'URI="../../RA/stream/media_2.m3u8"' in lines[2]
    hevc = next(line for line in lines if "hvc1" in line)
    assert 'CODECS="hvc1,mp4a.40.2"' in hevc and 'AUDIO="group_A1"' in hevc
    assert "BANDWIDTH=752672," in hevc  # video + the audio it now plays with
    assert lines[0] == "#EXTM3U" and composed.count("#EXTM3U") == 1


def test_hls_master_without_audio_adds_no_group() -> None:
    base = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=9,CODECS=\"avc1.64001e\"\nmedia_0.m3u8\n"
    composed = compose_hls_master(base, EXTRA_HLS, base_prefix="../../RA/stream/", audio_bandwidth=128000)
    assert "AUDIO=" not in composed and 'CODECS="hvc1"' in composed and "BANDWIDTH=624672," in composed
    with pytest.raises(ValueError):
        compose_hls_master("not a playlist", EXTRA_HLS, base_prefix="")
    with pytest.raises(ValueError):
        compose_hls_master(base, "#EXTM3U\n", base_prefix="")


def _mpd(sets: str) -> str:
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<MPD xmlns="{MPD_NS}" type="static" '
            f'mediaPresentationDuration="PT3.0S"><Period id="0" start="PT0.0S">{sets}</Period></MPD>')


def _set(set_id: int, rep_id: int, content: str, codecs: str) -> str:
    return (f'<AdaptationSet id="{set_id}" contentType="{content}"><Representation id="{rep_id}" codecs="{codecs}">'
            '<SegmentTemplate timescale="15360" initialization="init_$RepresentationID$.m4s" '
            'media="seg_$RepresentationID$_$Number%05d$.m4s" startNumber="1"/></Representation></AdaptationSet>')


def test_dash_manifest_renumbers_the_extra_sets_and_keeps_their_files() -> None:
    base = _mpd(_set(0, 0, "video", "avc1.64001e") + _set(1, 1, "audio", "mp4a.40.2"))
    extra = _mpd(_set(0, 0, "video", "hvc1") + _set(1, 1, "video", "av01.0.01M.08"))
    root = ET.fromstring(compose_dash(base, extra, base_prefix="../../RA/stream/"))
    ns = {"d": MPD_NS}
    sets = root.findall("d:Period/d:AdaptationSet", ns)
    assert [(a.get("id"), a.get("contentType")) for a in sets] == [
        ("0", "video"), ("2", "video"), ("3", "video"), ("1", "audio")]  # video sets first, audio last
    reps = [a.find("d:Representation", ns) for a in sets]
    assert [r.get("id") for r in reps] == ["0", "2", "3", "1"]  # unique in the Period
    templates = [r.find("d:SegmentTemplate", ns) for r in reps]
    assert templates[0].get("media") == "../../RA/stream/seg_$RepresentationID$_$Number%05d$.m4s"
    # The extra run's files keep the names its own ids gave them.
    assert (templates[1].get("initialization"), templates[2].get("media")) == ("init_0.m4s", "seg_1_$Number%05d$.m4s")
    assert templates[3].get("initialization") == "../../RA/stream/init_$RepresentationID$.m4s"


def test_relative_prefix_refuses_paths() -> None:
    assert relative_prefix("0123abcd") == "../../0123abcd/stream/"
    with pytest.raises(ValueError):
        relative_prefix("../x")


# --- publishing the full ladder ------------------------------------------------------------------------------


def test_full_ladder_is_published_next_to_the_playable_set(tmp_path: Path) -> None:
    store = MemoryStore()
    base = publish(fake_result(tmp_path / "a"), store=store, video_id="vid1", attempt=1, extra={"x": 1})
    full = publish(fake_result(tmp_path / "b"), store=store, video_id="vid1", attempt=1, base=base,
                   extra={"full_cpu_ms": 5})
    assert store.writes[-1] == manifest_key("vid1", 1, "full") == f"videos/vid1/v1/{FULL_MANIFEST_NAME}"
    assert full.stage == "full" and full.run_id != base.run_id
    assert full.renditions[: len(base.renditions)] == base.renditions  # every rendition, the playable ones first
    assert len(full.renditions) == 2 * len(base.renditions)
    assert (full.cover_key, full.audio_key, full.poster_keys) == (base.cover_key, base.audio_key, base.poster_keys)
    assert full.hls_master_key.startswith(full.prefix) and full.extra == {"x": 1, "full_cpu_ms": 5}
    assert find_published(store, "vid1", 1) == base and find_published(store, "vid1", 1, "full") == full
    # A redelivered full stage uploads nothing.
    writes = len(store.writes)
    assert publish(fake_result(tmp_path / "c"), store=store, video_id="vid1", attempt=1, base=base) == full
    assert len(store.writes) == writes
    # Both runs are named by a pointer: the sweep keeps them.
    store.now = T0.replace(year=2027)
    assert clean_stale_runs(store, video_id="vid1", now=store.now) == []


def test_full_pointer_without_extra_rungs_repeats_the_playable_set(tmp_path: Path) -> None:
    store = MemoryStore()
    base = publish(fake_result(tmp_path / "a"), store=store, video_id="vid1", attempt=1)
    full = publish(None, store=store, video_id="vid1", attempt=1, base=base)
    assert (full.stage, full.renditions, full.hls_master_key) == ("full", base.renditions, base.hls_master_key)
    assert find_published(store, "vid1", 1, "full") == full
