"""Read on-screen text from sampled frames with Tesseract, and check it against a blocked-terms list.

Tesseract (Debian `tesseract-ocr`, English `tessdata_fast` model) is read through its command line, so the
Python side needs no OCR wheel. All frames of a video are stacked into one tall image so that Tesseract
starts twice per video, not twice per frame. The two passes:
- the grey frame, for dark-on-light and plain text;
- a "caption" mask keeping only near-white pixels, for the white, outlined captions typical of short videos,
  which Tesseract misses on a busy background (measured: confidence 23 before, 96 after).
Coloured text on a busy background, handwriting, and text that is not Latin script are not read.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType

import numpy as np
from PIL import Image

from fyp.moderation.verdict import TEXT_CATEGORIES, TextHit
from udfs.limits import MAX_OCR_TEXT_CHARS

__all__ = [
    "BlockedTerms",
    "OcrError",
    "OcrSettings",
    "TextHit",
    "normalize_tokens",
    "read_text",
]

_GAP_PX = 16  # blank rows between stacked frames, so no text line spans two frames


class OcrError(RuntimeError):
    """Tesseract is missing or failed."""


@dataclass(frozen=True, kw_only=True)
class OcrSettings:
    """How text is read.

    language: Tesseract language pack(s), e.g. "eng" or "eng+spa" (default "eng"; others need their package).
    min_confidence: words Tesseract is less sure of (0..100) are dropped (default 60: noise on busy frames
        scores below 55, real captions above 90 in our measurements).
    light_text_min: a pixel belongs to a white caption when each of R, G and B is at least this (default 190).
    max_chars: the text returned is cut to this many characters (default and most: MAX_OCR_TEXT_CHARS, 2,000, the
        limit the orchestration holds ModerationResult.ocr_text to; udfs/limits.py).
    timeout_s: each Tesseract run's wall-clock limit (default 60 s).
    """

    language: str = "eng"
    min_confidence: float = 60.0
    light_text_min: int = 190
    max_chars: int = MAX_OCR_TEXT_CHARS
    timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z_]+(\+[a-z_]+)*", self.language):
            raise ValueError(f"language must look like 'eng' or 'eng+spa', got {self.language!r}")
        if not 0 <= self.min_confidence <= 100:
            raise ValueError(f"min_confidence must be in 0..100, got {self.min_confidence}")
        if not 0 <= self.light_text_min <= 255:
            raise ValueError(f"light_text_min must be in 0..255, got {self.light_text_min}")
        if not 1 <= self.max_chars <= MAX_OCR_TEXT_CHARS or self.timeout_s <= 0:
            raise ValueError(f"max_chars must be in 1..{MAX_OCR_TEXT_CHARS} and timeout_s > 0")


def _stack(frames: Sequence[np.ndarray]) -> np.ndarray:
    """One tall RGB image: the frames top to bottom, left-aligned on white, with a gap between them."""
    width = max(f.shape[1] for f in frames)
    height = sum(f.shape[0] for f in frames) + _GAP_PX * (len(frames) - 1)
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    top = 0
    for frame in frames:
        canvas[top : top + frame.shape[0], : frame.shape[1]] = frame
        top += frame.shape[0] + _GAP_PX
    return canvas


def _passes(image: np.ndarray, settings: OcrSettings) -> Iterable[np.ndarray]:
    yield np.asarray(Image.fromarray(image).convert("L"))
    caption = image.min(axis=2) >= settings.light_text_min
    yield np.where(caption, 0, 255).astype(np.uint8)  # black text on white, as Tesseract prefers


def _tesseract_lines(gray: np.ndarray, settings: OcrSettings) -> list[str]:
    """Text lines of one greyscale image, from Tesseract's TSV output, low-confidence words dropped."""
    binary = shutil.which("tesseract")
    if binary is None:
        raise OcrError("tesseract not found: install the Debian packages tesseract-ocr and tesseract-ocr-eng")
    png = io.BytesIO()
    Image.fromarray(gray).save(png, format="PNG")
    # --psm 11: sparse text in no particular order, which is what captions over video are.
    argv = [binary, "stdin", "stdout", "-l", settings.language, "--psm", "11", "tsv"]
    # One thread: a moderator process is sized for one core; OpenMP threads would compete with its peers.
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    try:
        done = subprocess.run(
            argv, input=png.getvalue(), capture_output=True, timeout=settings.timeout_s, env=env, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise OcrError(f"tesseract took longer than {settings.timeout_s} s") from exc
    if done.returncode != 0:
        raise OcrError(f"tesseract failed: {done.stderr.decode(errors='replace').strip()[-500:]}")
    lines: dict[tuple[str, str, str], list[str]] = {}
    rows = csv.DictReader(
        io.StringIO(done.stdout.decode(errors="replace")), delimiter="\t", quoting=csv.QUOTE_NONE
    )
    for row in rows:
        word = (row.get("text") or "").strip()
        if word and float(row.get("conf") or -1) >= settings.min_confidence:
            lines.setdefault((row["block_num"], row["par_num"], row["line_num"]), []).append(word)
    return [" ".join(words) for words in lines.values()]


def read_text(frames: Sequence[np.ndarray], settings: OcrSettings | None = None) -> str:
    """The distinct text lines found in `frames` (HxWx3 uint8 RGB), one per line, in order of discovery.

    Returns "" when no frame has readable text. Raises OcrError when Tesseract is missing or fails.
    """
    settings = settings or OcrSettings()
    if not frames:
        return ""
    seen: dict[str, str] = {}
    for gray in _passes(_stack(frames), settings):
        for line in _tesseract_lines(gray, settings):
            seen.setdefault(line.casefold(), line)
    return "\n".join(seen.values())[: settings.max_chars]


# Common digit and symbol stand-ins for letters ("sh1t", "$cam", "fr3e"), undone before matching.
# "!" is left alone: it ends far more words ("wow!!") than it replaces an "i".
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})
_TOKEN = re.compile(r"[a-z]+")
_REPEAT = re.compile(r"(.)\1{2,}")  # "fuuuuck": a letter three or more times in a row


def normalize_tokens(text: str) -> list[str]:
    """Lower-case, accent-free, leetspeak-undone word tokens of `text`.

    >>> normalize_tokens("FR3E Fóllowers!!  sooooo $cam")
    ['free', 'followers', 'so', 'scam']
    """
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return [_REPEAT.sub(r"\1", token) for token in _TOKEN.findall(plain.translate(_LEET))]


@dataclass(frozen=True, kw_only=True)
class BlockedTerms:
    """A blocked-terms list: whole words or phrases, and word prefixes (`term*`), each with a category.

    The file format is one `category<TAB>term` a line; `#` starts a comment. Terms are normalised like the
    text (`normalize_tokens`), so the list needs no leetspeak or accent variants.

    >>> terms = BlockedTerms.parse("scam\\tfree followers\\nprofanity\\tshit*\\n")
    >>> terms.check("Get FREE followers, no sh1tty bots")
    (TextHit(category='scam', term='free followers'), TextHit(category='profanity', term='shit*'))
    """

    phrases: Mapping[tuple[str, ...], TextHit]
    prefixes: Mapping[str, TextHit]

    @classmethod
    def parse(cls, text: str, *, source: str = "<string>") -> BlockedTerms:
        phrases: dict[tuple[str, ...], TextHit] = {}
        prefixes: dict[str, TextHit] = {}
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            category, sep, term = line.partition("\t")
            category, term = category.strip(), term.strip()
            if not sep or not term:
                raise ValueError(f"{source}:{number}: expected 'category<TAB>term', got {raw!r}")
            if category not in TEXT_CATEGORIES:
                raise ValueError(
                    f"{source}:{number}: unknown category {category!r}; use one of {TEXT_CATEGORIES}"
                )
            tokens = normalize_tokens(term.removesuffix("*"))
            hit = TextHit(category=category, term=term)
            if term.endswith("*"):
                if len(tokens) != 1:
                    raise ValueError(f"{source}:{number}: a prefix term is a single word, got {term!r}")
                prefixes[tokens[0]] = hit
            elif tokens:
                phrases[tuple(tokens)] = hit
            else:
                raise ValueError(f"{source}:{number}: {term!r} has no letters")
        return cls(phrases=MappingProxyType(phrases), prefixes=MappingProxyType(prefixes))

    @classmethod
    def load(cls, path: str | Path | None = None) -> BlockedTerms:
        """The list at `path`, or the one shipped in `fyp/moderation/data/blocked_terms.tsv`."""
        if path is None:
            shipped = resources.files("fyp.moderation").joinpath("data/blocked_terms.tsv")
            return cls.parse(shipped.read_text(encoding="utf-8"), source="blocked_terms.tsv")
        return cls.parse(Path(path).read_text(encoding="utf-8"), source=str(path))

    def check(self, text: str) -> tuple[TextHit, ...]:
        """Every distinct blocked term in `text`, in order of first appearance."""
        tokens = normalize_tokens(text)
        lengths = sorted({len(p) for p in self.phrases})
        hits: dict[TextHit, None] = {}
        for i, token in enumerate(tokens):
            for n in lengths:
                hit = self.phrases.get(tuple(tokens[i : i + n]))
                if hit is not None:
                    hits[hit] = None
            for prefix, hit in self.prefixes.items():
                if token.startswith(prefix):
                    hits[hit] = None
        return tuple(hits)
