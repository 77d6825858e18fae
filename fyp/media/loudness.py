"""How loud each audio stream of a media file or manifest is, measured by ffmpeg's `volumedetect`.

Used to show that a muted video's published renditions carry silence (docs/MODERATION.md, "Mute"): ffmpeg
decodes every audio stream it finds (an HLS master or a DASH manifest lists all of them) and reports the peak.
Digital silence reads as about -91 dB (the floor of 16-bit samples); anything audible is far above -60 dB.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass

__all__ = ["SILENCE_DB", "AudioLevel", "audio_levels"]

SILENCE_DB = -90.0  # at or below: no sample above the 16-bit floor, i.e. silence
_MAX_VOLUME = re.compile(r"max_volume:\s*(-?inf|-?[0-9.]+) dB")


@dataclass(frozen=True, kw_only=True)
class AudioLevel:
    """One audio stream: its index in the input, codec, and peak level in dBFS (-inf for exact zeros)."""

    stream_index: int
    codec: str
    max_volume_db: float

    @property
    def silent(self) -> bool:
        return self.max_volume_db <= SILENCE_DB


def audio_levels(source: str | os.PathLike[str], *, timeout_s: float = 120.0) -> list[AudioLevel]:
    """The peak level of every audio stream of `source` (a file, an HLS master, a DASH manifest); [] if none.

    Only the `file` protocol is allowed: a manifest's URIs reach local files and nothing else. Raises RuntimeError
    when ffprobe or ffmpeg cannot read it.
    """
    path = os.fspath(source)
    probe = _run(["ffprobe", "-v", "error", "-protocol_whitelist", "file", "-show_entries",
                  "stream=index,codec_type,codec_name", "-of", "json", path], timeout_s).stdout
    streams = [s for s in json.loads(probe).get("streams", []) if s.get("codec_type") == "audio"]
    levels = []
    for stream in streams:
        log = _run(["ffmpeg", "-nostdin", "-hide_banner", "-v", "info", "-protocol_whitelist", "file", "-i", path,
                    "-map", f"0:{stream['index']}", "-af", "volumedetect", "-f", "null", "-"], timeout_s).stderr
        found = _MAX_VOLUME.findall(log)
        if not found:
            raise RuntimeError(f"volumedetect reported nothing for stream {stream['index']} of {path}")
        levels.append(AudioLevel(stream_index=int(stream["index"]), codec=str(stream.get("codec_name")),
                                 max_volume_db=float(found[-1])))
    return levels


def _run(argv: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: {done.stderr.strip()[-500:]}")
    return done
