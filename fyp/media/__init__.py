"""Upload processing for short videos: from an uploaded file to published, streamable renditions.

Modules, each with one job:
- `probe`: sniff magic bytes, ffprobe facts (`MediaInfo`), upload limits and refusal reasons;
- `ladder`: plan renditions (sizes, codecs, bitrates, GOP) from a `MediaInfo`;
- `transcode`: one ffmpeg process for the whole ladder + CMAF HLS/DASH, cover, posters, audio;
- `fingerprint`: Chromaprint audio fingerprints, and matching them against catalogue tracks;
- `music_catalogue`: the licence catalogue as one S3 object: codec, conditional edits, workers' reloading copy;
- `pipeline`: the local sequence probe -> limits -> transcode -> fingerprint -> match (-> silent audio, for a
  track whose decision mutes);
- `loudness`: the peak level of each audio stream (shows that muted renditions carry silence);
- `keys`: object-key validation and server-side upload keys;
- `publish`: upload to S3 under a run prefix, then a manifest written last (atomic publish);
- `takedown`: block a taken-down video's published media (moved to quarantine) and restore it;
- `bench`: synthetic sources and the ladder benchmark.
See docs/UPLOADS.md.
"""

__all__: list[str] = []
