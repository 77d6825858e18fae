"""The moderator's per-event logic on published renditions in a dict-backed store: no Kafka, S3 or Redis."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from fyp.media.fingerprint import CatalogueEntry, Fingerprint, encode_fingerprint
from fyp.moderation.frames import FrameSampling
from fyp.moderation.nsfw import NsfwClassifier
from fyp.moderation.ocr import BlockedTerms
from fyp.moderation.phash import PdqIndex
from fyp.moderation.verdict import DEFAULT_POLICY, ModerationPolicy
from fyp.moderation.violence import ViolenceScore
from schemas.registry import default_registry

_spec = importlib.util.spec_from_file_location(
    "workers_moderator", Path(__file__).parents[3] / "workers" / "moderator.py"
)
assert _spec is not None and _spec.loader is not None
moderator_module = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = moderator_module  # dataclasses look their module up while the class is built
_spec.loader.exec_module(moderator_module)
Moderator = moderator_module.Moderator


def _frames(caption: str | None) -> list[np.ndarray]:
    """3 s at 5 fps of ffmpeg's testsrc2, with an optional white caption burnt in."""
    argv = [
        "ffmpeg",
        "-nostdin",
        "-v",
        "error",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x180:rate=5:duration=3",
    ]
    raw = subprocess.run(
        [*argv, "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"], capture_output=True, check=True
    )
    font = ImageFont.load_default(size=34)
    out = []
    for rgb in np.frombuffer(raw.stdout, dtype=np.uint8).reshape(-1, 180, 320, 3):
        image = Image.fromarray(rgb)
        if caption:
            ImageDraw.Draw(image).text(
                (14, 70), caption, font=font, fill="white", stroke_width=3, stroke_fill="black"
            )
        out.append(np.asarray(image))
    return out


def _publish(store: dict[str, bytes], tmp: Path, video_id: str, frames: list[np.ndarray], width: int) -> dict:
    """Encode frames the way the transcoder publishes them (CMAF + HLS playlist, cover JPEG) into `store`."""
    out = tmp / video_id
    out.mkdir()
    h, w = frames[0].shape[:2]
    argv = [
        "ffmpeg",
        "-nostdin",
        "-v",
        "error",
        "-y",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        f"{w}x{h}",
    ]
    argv += ["-r", "5", "-i", "pipe:0", "-vf", f"scale={width}:-2", "-c:v", "libx264", "-preset", "ultrafast"]
    argv += [
        "-pix_fmt",
        "yuv420p",
        "-f",
        "dash",
        "-hls_playlist",
        "1",
        "-seg_duration",
        "2",
        str(out / "m.mpd"),
    ]
    subprocess.run(argv, input=b"".join(f.tobytes() for f in frames), check=True, timeout=60)
    Image.fromarray(frames[5]).save(out / "cover.jpg")
    prefix = f"videos/{video_id}/v1/run1/"
    for path in out.iterdir():
        store[prefix + path.name] = path.read_bytes()
    return {
        "event_id": f"e-{video_id}",
        "video_id": video_id,
        "author_id": "a1",
        "renditions": [
            {
                "codec": "h264",
                "width": width,
                "height": 180 * width // 320,
                "bitrate_kbps": 300,
                "playlist_key": prefix + "media_0.m3u8",
            },
        ],
        "cover_key": prefix + "cover.jpg",
        "audio_key": None,
    }


class DictStore:
    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def get_bytes(self, key: str) -> bytes | None:
        return self.objects.get(key)


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[DictStore, dict[str, dict]]:
    tmp = tmp_path_factory.mktemp("worker")
    objects: dict[str, bytes] = {}
    clean, scam = _frames(None), _frames("free followers")
    events = {
        "clean": _publish(objects, tmp, "clean", clean, 320),
        "clean_copy": _publish(objects, tmp, "clean_copy", clean, 240),
        "scam": _publish(objects, tmp, "scam", scam, 320),
        "scam_copy": _publish(objects, tmp, "scam_copy", scam, 240),
    }
    return DictStore(objects), events


@pytest.fixture(scope="module")
def moderator(published: tuple[DictStore, dict[str, dict]]) -> Any:
    store, _ = published
    return Moderator(
        store=store, nsfw=NsfwClassifier(), terms=BlockedTerms.load(), seen=PdqIndex(), rejected=PdqIndex()
    )


def _encode_round_trip(record: dict) -> dict:
    registry = default_registry()
    return registry.decode(registry.encode("ModerationResult", record)).record


def test_pipeline_end_to_end(moderator: Any, published: tuple[DictStore, dict[str, dict]]) -> None:
    _, events = published
    # Order matters: each video is checked against the ones moderated before it.
    clean = _encode_round_trip(moderator.moderate(events["clean"]))
    assert clean["verdict"] == "APPROVE" and clean["reasons"] == [] and clean["actions"] == []
    assert clean["nsfw_score"] < 0.2
    assert clean["near_duplicate_of"] is None and clean["music_id"] is None

    copy = _encode_round_trip(moderator.moderate(events["clean_copy"]))
    assert copy["verdict"] == "APPROVE"
    assert copy["near_duplicate_of"] == "clean"
    assert copy["reasons"] == ["near_duplicate:clean"]

    scam = _encode_round_trip(moderator.moderate(events["scam"]))
    assert scam["verdict"] == "REJECT" and scam["actions"][0] == "REJECT"
    assert "text_scam:free followers" in scam["reasons"]
    assert "free followers" in scam["ocr_text"].casefold()

    reupload = _encode_round_trip(moderator.moderate(events["scam_copy"]))
    assert reupload["verdict"] == "REJECT"
    assert reupload["reasons"][0] == "reupload_of_rejected:scam"
    assert reupload["near_duplicate_of"] == "scam"


class _FixedViolence:
    """A stand-in for a violence model (none ships, fyp/moderation/violence.py): scores every frame `score` and
    records how many frames it was given."""

    def __init__(self, score: float) -> None:
        self.score, self.frames_seen = score, 0

    def score_frames(self, frames: Any) -> ViolenceScore:
        self.frames_seen = len(frames)
        return ViolenceScore(score=self.score, frame_scores=tuple(self.score for _ in frames))


@pytest.mark.parametrize(("score", "verdict", "reasons"), [
    (0.1, "APPROVE", []), (0.6, "AGE_RESTRICT", ["violence_age_restrict"]), (0.9, "REJECT", ["violence_reject"])])
def test_a_violence_classifier_feeds_the_verdict(
    published: tuple[DictStore, dict[str, dict]], score: float, verdict: str, reasons: list[str]
) -> None:
    store, events = published
    violence = _FixedViolence(score)
    moderator = Moderator(store=store, nsfw=NsfwClassifier(), terms=BlockedTerms.load(), seen=PdqIndex(),
                          rejected=PdqIndex(), violence=violence)
    result = _encode_round_trip(moderator.moderate(events["clean"]))
    assert (result["verdict"], result["reasons"]) == (verdict, reasons)
    assert violence.frames_seen >= 2  # the sampled frames and the cover, as NSFW sees them


def test_the_moderators_frame_sampling_is_the_one_it_samples_with(
    published: tuple[DictStore, dict[str, dict]]
) -> None:
    store, events = published
    counts = {}
    for max_frames in (1, 8):
        violence = _FixedViolence(0.1)
        moderator = Moderator(store=store, nsfw=NsfwClassifier(), terms=BlockedTerms.load(), seen=PdqIndex(),
                              rejected=PdqIndex(), violence=violence,
                              sampling=FrameSampling(max_frames=max_frames, max_fps=8.0))
        moderator.moderate(events["clean"])
        counts[max_frames] = violence.frames_seen
    # The cover is scored besides the sampled frames; the sampled ones follow the moderator's own settings.
    assert counts[1] < counts[8], counts


def test_redelivery_gives_the_same_event_id_and_no_self_match(
    moderator: Any, published: tuple[DictStore, dict[str, dict]]
) -> None:
    _, events = published
    first = moderator.moderate(events["clean"])
    again = moderator.moderate(events["clean"])
    assert first["event_id"] == again["event_id"]
    assert again["near_duplicate_of"] != "clean"


def test_music_from_the_event_fingerprint(published: tuple[DictStore, dict[str, dict]]) -> None:
    store, events = published
    values = tuple(int(v) for v in np.random.default_rng(3).integers(0, 2**32, 120, dtype=np.uint64))
    track = Fingerprint(duration_s=15.0, values=values)
    catalogue = [CatalogueEntry(music_id="track-9", title="t", decision="mute", fingerprint=track)]
    moderator = Moderator(
        store=store, nsfw=NsfwClassifier(), terms=BlockedTerms.load(), seen=PdqIndex(), rejected=PdqIndex(),
        catalogue=catalogue,
    )  # fmt: skip
    clip = Fingerprint(duration_s=10.0, values=values[30:110])  # a 10 s excerpt of the track
    # The transcoder published it silent (audio_muted): the mute is recorded as an action.
    muted = {**events["clean"], "audio_fingerprint": encode_fingerprint(clip), "audio_muted": "track-9"}
    result = _encode_round_trip(moderator.moderate(muted))
    assert result["verdict"] == "MUTE_AUDIO" and result["actions"] == ["MUTE_AUDIO"]
    assert result["music_id"] == "track-9"
    assert result["reasons"] == ["music_muted:track-9"]
    # Published with its audio (a transcoder whose catalogue did not match yet): never made audible, rejected.
    unmuted = _encode_round_trip(moderator.moderate({**muted, "audio_muted": None}))
    assert (unmuted["verdict"], unmuted["actions"], unmuted["reasons"]) == (
        "REJECT", ["REJECT"], ["music_unmuted:track-9"])
    garbled = moderator.moderate({**events["clean"], "audio_fingerprint": "cp1:oops"})
    assert garbled["music_id"] is None  # fails open, like the transcoder


def test_playlist_cannot_point_outside_the_video(published: tuple[DictStore, dict[str, dict]]) -> None:
    store, events = published
    event = events["clean"]
    evil = dict(store.objects)
    evil[event["renditions"][0]["playlist_key"]] = b"#EXTM3U\n../../other/secret.m4s\n"
    with pytest.raises(ValueError, match="unexpected segment name"):
        moderator_module.download_rendition(DictStore(evil), event, 640, Path("/nonexistent"))
    foreign = {
        **event,
        "renditions": [{**event["renditions"][0], "playlist_key": "videos/x/v1/r/media_0.m3u8"}],
    }
    with pytest.raises(ValueError, match="not under"):
        moderator_module.download_rendition(store, foreign, 640, Path("/nonexistent"))


def _skin_frames() -> list[np.ndarray]:
    """3 s at 5 fps of a softly lit skin-toned surface: as close to explicit content as we can generate.

    No explicit image can be shipped or downloaded, and none can be synthesized (a hill-climb on open_nsfw's
    score from flat skin tones did not move it past ~0.29), so this is the highest-scoring input at hand.
    """
    y, x = np.mgrid[0:180, 0:320]
    light = 0.75 + 0.25 * np.exp(-(((x - 160) / 150.0) ** 2 + ((y - 90) / 110.0) ** 2))
    frame = (light[..., None] * np.array([188, 120, 80])).astype(np.uint8)
    return [frame] * 15


def test_the_real_nsfw_score_of_published_frames_drives_the_verdict(
    published: tuple[DictStore, dict[str, dict]], tmp_path: Path
) -> None:
    """The explicit-content path below the verdict: frames sampled from the published rendition, scored by
    the real open_nsfw model, compared with the policy's thresholds, and reported as a REJECT with its reason.
    A generated skin-toned clip scores well above a test pattern but below Yahoo's 0.8, so the policy here
    is set between the two scores the model really gave: the verdict must follow the model, not the labels."""
    store, events = published
    objects = dict(store.objects)
    skin_event = _publish(objects, tmp_path, "skin", _skin_frames(), 320)
    plain = Moderator(store=DictStore(objects), nsfw=NsfwClassifier(), terms=BlockedTerms.load(),
                      seen=PdqIndex(), rejected=PdqIndex())
    skin, clean = plain.moderate(skin_event), plain.moderate(events["clean"])
    # What the model says, with the default policy: skin tones score far above a test pattern, still "safe".
    assert skin["nsfw_score"] > 0.15 and skin["nsfw_score"] > 50 * clean["nsfw_score"], (skin, clean)
    assert skin["verdict"] == "APPROVE" and skin["nsfw_score"] < DEFAULT_POLICY.nsfw_restrict_at

    def strict(restrict_at: float, reject_at: float) -> Any:
        policy = ModerationPolicy(nsfw_restrict_at=restrict_at, nsfw_reject_at=reject_at)
        return Moderator(store=DictStore(objects), nsfw=NsfwClassifier(), terms=BlockedTerms.load(),
                         seen=PdqIndex(), rejected=PdqIndex(), policy=policy)

    between = (skin["nsfw_score"] + clean["nsfw_score"]) / 2
    rejected = _encode_round_trip(strict(between / 2, between).moderate(skin_event))
    assert (rejected["verdict"], rejected["reasons"]) == ("REJECT", ["nsfw_reject"])
    restricted = strict(between, 1.0).moderate(skin_event)
    assert (restricted["verdict"], restricted["reasons"]) == ("AGE_RESTRICT", ["nsfw_age_restrict"])
    assert strict(between / 2, between).moderate(events["clean"])["verdict"] == "APPROVE"
