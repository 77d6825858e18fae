"""Compose one HLS master playlist and one DASH manifest from two stages' manifests (pure text in, text out).

The two-stage ladder (docs/UPLOADS.md, "Two stages") publishes the H.264 set first, in run A, and the H.265/AV1
top rungs later, in run B. Run B's own manifests list only its rungs; the republished manifests must list every
rendition. They are written into run B (`B/stream/`) and point at run A's files with relative URIs
(`../../A/stream/...`), so nothing of run A is copied or rewritten and run A's own manifests keep working for
readers that still hold them. Both runs come from the same ladder plan: same frame rate, same forced key frames
every 2 s, so their segments line up and a player may switch between any of them at a segment boundary.

HLS: run A's master (audio group, H.264 variants) with its URIs prefixed, then run B's variants, each joined to
run A's audio group (run B has no audio) with the audio codec added to CODECS and the audio bitrate to
BANDWIDTH, as the HLS spec asks of a variant that plays with an audio rendition.
DASH: run A's MPD with every SegmentTemplate path prefixed, and run B's adaptation sets inserted after A's video
sets with fresh AdaptationSet and Representation ids (ids must be unique in a Period); their templates name
their files by the old id literally, since `$RepresentationID$` would now expand to the new one.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

__all__ = ["MPD_NS", "compose_dash", "compose_hls_master", "relative_prefix"]

MPD_NS = "urn:mpeg:dash:schema:mpd:2011"
_NS = {"d": MPD_NS}
_URI_ATTR = re.compile(r'URI="([^"]*)"')
_AUDIO_CODEC = re.compile(r"^(mp4a|opus|ac-3|ec-3|flac|fLaC)", re.IGNORECASE)


def relative_prefix(base_run_id: str) -> str:
    """The path from a run's `stream/` folder to another run's `stream/` folder of the same video version.

    >>> relative_prefix("a1b2")
    '../../a1b2/stream/'
    """
    if not re.fullmatch(r"[A-Za-z0-9_-]+", base_run_id):
        raise ValueError(f"not a run id: {base_run_id!r}")
    return f"../../{base_run_id}/stream/"


def compose_hls_master(base: str, extra: str, *, base_prefix: str, extra_prefix: str = "",
                       audio_bandwidth: int = 0) -> str:
    """One master playlist: `base`'s lines (URIs under `base_prefix`) followed by `extra`'s variants.

    audio_bandwidth: bits/s of base's audio rendition, added to each extra variant's BANDWIDTH when it joins
    base's audio group.

    >>> base = ('#EXTM3U\\n#EXT-X-VERSION:7\\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="A1",NAME="a",URI="media_1.m3u8"\\n'
    ...         '#EXT-X-STREAM-INF:BANDWIDTH=1000,CODECS="avc1.64001e,mp4a.40.2",AUDIO="A1"\\nmedia_0.m3u8\\n')
    >>> extra = '#EXTM3U\\n#EXT-X-VERSION:7\\n#EXT-X-STREAM-INF:BANDWIDTH=500,CODECS="hvc1"\\nmedia_0.m3u8\\n'
    >>> print(compose_hls_master(base, extra, base_prefix="../../A/stream/", audio_bandwidth=100))
    #EXTM3U
    #EXT-X-VERSION:7
    #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="A1",NAME="a",URI="../../A/stream/media_1.m3u8"
    #EXT-X-STREAM-INF:BANDWIDTH=1000,CODECS="avc1.64001e,mp4a.40.2",AUDIO="A1"
    ../../A/stream/media_0.m3u8
    #EXT-X-STREAM-INF:BANDWIDTH=600,CODECS="hvc1,mp4a.40.2",AUDIO="A1"
    media_0.m3u8
    <BLANKLINE>
    """
    out: list[str] = []
    audio_group: str | None = None
    audio_codecs: list[str] = []
    for line in _lines(base):
        if line.startswith("#EXT-X-MEDIA:") and "TYPE=AUDIO" in line:
            group = re.search(r'GROUP-ID="([^"]*)"', line)
            audio_group = audio_group or (group.group(1) if group else None)
        if line.startswith("#EXT-X-STREAM-INF:") and not audio_codecs:
            audio_codecs = [c for c in _attr(line, "CODECS").split(",") if _AUDIO_CODEC.match(c)]
        out.append(_prefixed(line, base_prefix))
    if not out or out[0] != "#EXTM3U":
        raise ValueError("the base playlist is not an HLS master playlist")
    variants = 0
    for line in _lines(extra):
        if line.startswith("#EXT-X-STREAM-INF:"):
            if audio_group is not None and "AUDIO=" not in line:
                codecs = ",".join([c for c in _attr(line, "CODECS").split(",") if c] + audio_codecs)
                line = _set_attr(line, "CODECS", f'"{codecs}"')
                line = _set_attr(line, "BANDWIDTH", str(int(_attr(line, "BANDWIDTH") or 0) + audio_bandwidth))
                line += f',AUDIO="{audio_group}"'
            out.append(line)
            variants += 1
        elif not line.startswith("#") and variants:
            out.append(_prefixed(line, extra_prefix))
    if variants == 0:
        raise ValueError("the extra playlist has no variants")
    return "\n".join(out) + "\n"


def compose_dash(base: str, extra: str, *, base_prefix: str, extra_prefix: str = "") -> str:
    """One MPD: `base` with its segment paths under `base_prefix`, plus `extra`'s adaptation sets (paths under
    `extra_prefix`) after base's video sets, renumbered."""
    ET.register_namespace("", MPD_NS)
    ET.register_namespace("xsi", "http://www.w3.org/2001/XMLSchema-instance")
    ET.register_namespace("xlink", "http://www.w3.org/1999/xlink")
    root = ET.fromstring(base)
    period = root.find("d:Period", _NS)
    extra_period = ET.fromstring(extra).find("d:Period", _NS)
    if period is None or extra_period is None:
        raise ValueError("both manifests need a Period")
    sets = period.findall("d:AdaptationSet", _NS)
    for adaptation in sets:
        _prefix_templates(adaptation, base_prefix)
    next_set = 1 + max((int(a.get("id", "-1")) for a in sets), default=-1)
    next_rep = 1 + max((int(r.get("id", "-1")) for r in period.iter(f"{{{MPD_NS}}}Representation")), default=-1)
    # After the last video set, so a player that takes the first sets sees video, then audio, as before.
    children = list(period)
    videos = [i for i, c in enumerate(children) if c in sets and c.get("contentType") == "video"]
    at = (videos[-1] + 1) if videos else len(children)
    added = 0
    for adaptation in extra_period.findall("d:AdaptationSet", _NS):
        adaptation.set("id", str(next_set))
        next_set += 1
        for rep in adaptation.findall("d:Representation", _NS):
            old = rep.get("id", "")
            for template in rep.iter(f"{{{MPD_NS}}}SegmentTemplate"):
                for name in ("initialization", "media"):
                    if template.get(name):
                        template.set(name, template.get(name, "").replace("$RepresentationID$", old))
            rep.set("id", str(next_rep))
            next_rep += 1
        _prefix_templates(adaptation, extra_prefix)
        period.insert(at + added, adaptation)
        added += 1
    if added == 0:
        raise ValueError("the extra manifest has no adaptation sets")
    ET.indent(root, space="\t")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _prefixed(line: str, prefix: str) -> str:
    if not prefix:
        return line
    if line.startswith("#"):
        return _URI_ATTR.sub(lambda m: f'URI="{_join(prefix, m.group(1))}"', line)
    return _join(prefix, line)


def _join(prefix: str, uri: str) -> str:
    # Absolute URIs (a CDN host) stay as they are; ours are all relative.
    return uri if re.match(r"^[a-z][a-z0-9+.-]*:|^/", uri, re.IGNORECASE) else prefix + uri


def _attr(line: str, name: str) -> str:
    found = re.search(rf'(?:[:,]){name}=("([^"]*)"|[^,]*)', line)
    if not found:
        return ""
    return found.group(2) if found.group(2) is not None else found.group(1)


def _set_attr(line: str, name: str, value: str) -> str:
    if not _attr(line, name) and f"{name}=" not in line:
        return f"{line},{name}={value}"
    return re.sub(rf'([:,]){name}=("[^"]*"|[^,]*)', lambda m: f"{m.group(1)}{name}={value}", line, count=1)


def _prefix_templates(adaptation: ET.Element, prefix: str) -> None:
    if not prefix:
        return
    for template in adaptation.iter(f"{{{MPD_NS}}}SegmentTemplate"):
        for name in ("initialization", "media"):
            value = template.get(name)
            if value:
                template.set(name, _join(prefix, value))
