"""Moderator worker: TranscodeCompleted in, ModerationResult out, as a Kafka consumer group.

Wiring only; the checks live in `fyp.moderation`. For each event: download the published rendition closest to
the frame size we sample at (its HLS playlist and fMP4 segments) and the cover from S3, sample frames, score
NSFW (and violence, once a `ViolenceClassifier` is given: none ships today), read on-screen text, match the
event's audio fingerprint against the music catalogue (and read whether the transcoder already published silent
audio, `audio_muted`), look the PDQ signature up in the near-duplicate indexes (Redis), decide, emit the verdict
and every action that applies. Moderating the published rendition, not the upload, means we judge exactly what
viewers get. The result's event_id is derived from the input's, so a
redelivery yields the same event and consumers dedupe.

`handler` is all this module adds to the worker runtime (`workers.runtime.run_consumer`), which owns the rest:
offsets are committed after the result is acknowledged (at-least-once), and S3, Redis or model trouble is
retried with back-off. A record it cannot process (undecodable; a TranscodeCompleted that breaks its field
contract, names a key or object that is not there, or is otherwise malformed: `POISON`) becomes a dead letter on
fyp.uploads.dlq.v1 (`workers.dead_letters`) and is committed once the dead letter is acknowledged.

Run: `python -m workers.moderator` (settings from `fyp.config`, topics from `schemas.topics`, see `Topics`).
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from fyp.media.fingerprint import CatalogueEntry, MusicMatch, decode_fingerprint, match
from fyp.media.keys import validate_key, video_root
from fyp.media.music_catalogue import CatalogueSource, tracks_of
from fyp.moderation.frames import FrameExtractionError, FrameSampling, sample_frames
from fyp.moderation.nsfw import NsfwClassifier
from fyp.moderation.ocr import BlockedTerms, OcrSettings, read_text
from fyp.moderation.phash import RedisPdqIndex, video_signature
from fyp.moderation.verdict import DEFAULT_POLICY, ModerationPolicy, ModerationSignals, Verdict, decide
from fyp.moderation.violence import ViolenceClassifier
from workers.runtime import ConsumerConfig, Handler, Output, run_consumer

__all__ = ["POISON", "Moderator", "Topics", "handler", "main", "run"]

log = logging.getLogger("fyp.moderator")

_SEGMENT_NAME = re.compile(r"[A-Za-z0-9._-]+")  # the transcoder writes flat, relative segment names
_MAX_DOWNLOAD_BYTES = 256 << 20  # a 3-minute 640p rendition is ~20 MB; anything this big is not ours


def _uploads_topic() -> str:
    from schemas.topics import UPLOADS

    return UPLOADS.name


def _dead_letter_topic() -> str:
    from schemas.topics import UPLOADS_DLQ

    return UPLOADS_DLQ.name


@dataclass(frozen=True, kw_only=True)
class Topics:
    """Topic names (the whole upload lifecycle shares `schemas.topics.UPLOADS`; dead letters go to
    `UPLOADS_DLQ`); the environment variables FYP_TOPIC_MODERATION_INPUT / FYP_TOPIC_MODERATION_OUTPUT /
    FYP_TOPIC_MODERATION_DEAD_LETTERS / FYP_MODERATOR_GROUP override them."""

    input: str = field(
        default_factory=lambda: os.environ.get("FYP_TOPIC_MODERATION_INPUT") or _uploads_topic()
    )
    output: str = field(
        default_factory=lambda: os.environ.get("FYP_TOPIC_MODERATION_OUTPUT") or _uploads_topic()
    )
    dead_letters: str = field(
        default_factory=lambda: os.environ.get("FYP_TOPIC_MODERATION_DEAD_LETTERS") or _dead_letter_topic()
    )
    group_id: str = field(default_factory=lambda: os.environ.get("FYP_MODERATOR_GROUP", "fyp-moderator"))


class ObjectReader(Protocol):
    """The one object-store call the moderator needs (`fyp.media.publish.S3ObjectStore` has it)."""

    def get_bytes(self, key: str) -> bytes | None: ...


class SignatureIndex(Protocol):
    def query(self, signature: Any, *, exclude: str | None = None) -> Any: ...

    def add(self, video_id: str, signature: Any) -> None: ...


def _fetch(store: ObjectReader, key: str) -> bytes:
    data = store.get_bytes(key)
    if data is None:
        raise FileNotFoundError(f"s3 object {key} is missing")
    return data


def download_rendition(store: ObjectReader, event: Mapping[str, Any], max_side_px: int, into: Path) -> Path:
    """Download the smallest rendition at least `max_side_px` on its long side (else the largest) and
    return the local path of its HLS media playlist, ready for ffmpeg."""
    root = video_root(event["video_id"])
    renditions = sorted(event["renditions"], key=lambda r: max(r["width"], r["height"]))
    chosen = next((r for r in renditions if max(r["width"], r["height"]) >= max_side_px), renditions[-1])
    playlist_key = validate_key(chosen["playlist_key"], prefix=root)
    base = playlist_key.rpartition("/")[0]
    playlist = _fetch(store, playlist_key).decode()
    names = re.findall(r'URI="([^"]+)"', playlist)
    names += [ln.strip() for ln in playlist.splitlines() if ln.strip() and not ln.startswith("#")]
    total = 0
    for name in dict.fromkeys(names):
        # Only flat names under the rendition's prefix: the playlist must not steer ffmpeg or us elsewhere.
        if not _SEGMENT_NAME.fullmatch(name) or name in (".", ".."):
            raise ValueError(f"unexpected segment name {name!r} in {playlist_key}")
        data = _fetch(store, validate_key(f"{base}/{name}", prefix=root))
        total += len(data)
        if total > _MAX_DOWNLOAD_BYTES:
            raise ValueError(f"rendition {playlist_key} is larger than {_MAX_DOWNLOAD_BYTES} bytes")
        (into / name).write_bytes(data)
    local = into / "playlist.m3u8"
    local.write_text(playlist)
    return local


def decode_image(data: bytes, max_side_px: int) -> np.ndarray:
    """A JPEG/PNG as an RGB array, scaled down like the sampled frames."""
    from io import BytesIO

    from PIL import Image

    try:
        with Image.open(BytesIO(data)) as image:
            rgb = image.convert("RGB")
            rgb.thumbnail((max_side_px, max_side_px))
            return np.asarray(rgb)
    except (OSError, Image.DecompressionBombError) as exc:
        # Bytes in memory: an OSError is the image's fault (not a picture, truncated), so the record's, and
        # retrying cannot help. A ValueError makes the worker dead-letter it rather than retry forever.
        raise ValueError(f"the cover is not a readable image: {exc}") from exc


def _match_music(fingerprint: str | None, catalogue: Sequence[CatalogueEntry]) -> MusicMatch | None:
    """The transcoder's fingerprint of the original audio against the catalogue. The transcoder only
    fingerprints; the licence decision (allow / mute / block) is applied here, through the verdict."""
    if not fingerprint or not catalogue:
        return None
    try:
        return match(decode_fingerprint(fingerprint), catalogue)
    except ValueError as exc:  # fail open, as the transcoder does for audio it cannot fingerprint
        log.warning("unreadable audio_fingerprint: %s", exc)
        return None


@dataclass(kw_only=True)
class Moderator:
    """All checks for one TranscodeCompleted record; `moderate` returns the ModerationResult record."""

    store: ObjectReader
    nsfw: NsfwClassifier
    terms: BlockedTerms
    seen: SignatureIndex  # every moderated video
    rejected: SignatureIndex  # the rejected ones: a match there is a re-upload
    catalogue: CatalogueSource = ()  # a SharedCatalogue in the worker: reloaded when the S3 object changes
    sampling: FrameSampling = field(default_factory=FrameSampling)
    ocr: OcrSettings = field(default_factory=OcrSettings)
    policy: ModerationPolicy = DEFAULT_POLICY
    # None today: no usable violence model ships in a package (fyp/moderation/violence.py); None proposes nothing.
    violence: ViolenceClassifier | None = None

    def moderate(self, event: Mapping[str, Any]) -> dict[str, Any]:
        video_id = event["video_id"]
        with tempfile.TemporaryDirectory(prefix="fyp-moderate-") as tmp:
            work = Path(tmp)
            try:
                frames = sample_frames(download_rendition(self.store, event, self.sampling.max_side_px, work),
                                       self.sampling)
            except FrameExtractionError as exc:
                # Undecodable output of our own transcoder: fail closed through `unscored_verdict`.
                log.warning("video %s: no frames: %s", video_id, exc)
                frames = []
            # Under the video's own prefix, as the renditions: a record must not make us read any object it names.
            cover_key = validate_key(event["cover_key"], prefix=video_root(video_id))
            cover = decode_image(_fetch(self.store, cover_key), self.sampling.max_side_px)
        visual = [*frames, cover]
        music = _match_music(event.get("audio_fingerprint"), tracks_of(self.catalogue))
        text = read_text(visual, self.ocr)
        signature = video_signature(frames)
        reupload = self.rejected.query(signature, exclude=video_id)
        near = None if reupload else self.seen.query(signature, exclude=video_id)
        signals = ModerationSignals(
            nsfw_score=self.nsfw.score_frames(visual).score if frames else None,
            violence_score=self.violence.score_frames(visual).score if frames and self.violence else None,
            text_hits=self.terms.check(text),
            music=music,
            near_duplicate=near,
            reupload_of_rejected=reupload,
            # What the transcoder published: silence for this music_id, or the upload's own audio.
            audio_muted=event.get("audio_muted") or None,
        )
        decision = decide(signals, self.policy)
        self.seen.add(video_id, signature)
        if decision.verdict is Verdict.REJECT:
            self.rejected.add(video_id, signature)
        duplicate = reupload or near
        return {
            "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"fyp:moderation:{event['event_id']}")),
            "event_time": int(time.time() * 1000),
            "video_id": video_id,
            "author_id": event["author_id"],
            "verdict": decision.verdict.value,
            "actions": [action.value for action in decision.actions],
            "reasons": list(decision.reasons),
            "nsfw_score": signals.nsfw_score,
            "ocr_text": text or None,
            "music_id": music.music_id if music else None,
            "near_duplicate_of": duplicate.video_id if duplicate else None,
        }


# What an event can cause by itself (a bad key, a missing object, a mistyped field): retrying cannot help, and
# blocking the partition would stall every upload. The video stays unmoderated: unpublished.
POISON = (ValueError, LookupError, TypeError, FileNotFoundError)


def handler(moderator: Moderator, topics: Topics) -> Handler:
    """The runtime's handler: a playable-stage TranscodeCompleted becomes a ModerationResult on `topics.output`;
    other records are skipped; an unreadable or malformed one raises `Poison`."""
    from schemas.registry import default_registry
    from workers.dead_letters import accept

    registry = default_registry()

    def handle(message: Any) -> list[Output]:
        # The topic carries the whole lifecycle. Only the playable stage is moderated: the full ladder adds
        # encodings of the same pictures and sound (docs/UPLOADS.md, "Two stages").
        event = accept(message.value(), "TranscodeCompleted", skip=lambda e: e.record.get("stage") == "full")
        if event is None:
            return []
        result = moderator.moderate(event)
        value = registry.encode("ModerationResult", result)
        log.info("video %s: %s %s", result["video_id"], result["verdict"], result["reasons"])
        return [Output(topic=topics.output, key=result["video_id"].encode(), value=value)]

    return handle


def run(topics: Topics | None = None) -> None:  # pragma: no cover - needs Kafka, S3 and Redis
    """Consume until SIGTERM/SIGINT with the worker runtime (`workers.runtime.run_consumer`)."""
    from fyp.config import load_settings
    from fyp.media.music_catalogue import worker_catalogue
    from fyp.media.publish import S3ObjectStore, make_s3_client

    topics = topics or Topics()
    settings = load_settings()
    client = settings.redis_client()
    moderator = Moderator(
        store=S3ObjectStore(make_s3_client(settings), settings.media_bucket),
        nsfw=NsfwClassifier(threads=1),
        terms=BlockedTerms.load(os.environ.get("FYP_BLOCKED_TERMS") or None),
        # The format-1 lists (before crop hashes) are still read, so earlier rejections keep blocking re-uploads.
        seen=RedisPdqIndex(client, key="fyp:moderation:pdq:v2:seen", legacy_key="fyp:moderation:pdq:seen"),
        rejected=RedisPdqIndex(client, key="fyp:moderation:pdq:v2:rejected",
                               legacy_key="fyp:moderation:pdq:rejected"),
        catalogue=worker_catalogue(settings),
    )
    # S3, Redis or a model failing is not the event's fault: the runtime retries those, backing off to 60 s.
    config = ConsumerConfig(topics=(topics.input,), group_id=topics.group_id, dead_letters=topics.dead_letters,
                            poison=POISON)
    run_consumer(handler(moderator, topics), config, settings)


def main() -> None:  # pragma: no cover
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    run()


if __name__ == "__main__":  # pragma: no cover
    main()
