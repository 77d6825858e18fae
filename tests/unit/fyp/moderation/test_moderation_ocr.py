"""On-screen text: Tesseract reads text rendered with PIL, and the blocked-terms list acts on it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from fyp.moderation.frames import sample_frames
from fyp.moderation.ocr import BlockedTerms, OcrSettings, TextHit, normalize_tokens, read_text
from fyp.moderation.verdict import ModerationSignals, Verdict, decide


def _render(text: str, *, background: np.ndarray | None = None, caption: bool = False) -> np.ndarray:
    """Text drawn with Pillow's bundled font (no system font needed): dark on light, or a white caption."""
    image = (
        Image.fromarray(background)
        if background is not None
        else Image.new("RGB", (480, 160), (235, 235, 225))
    )
    font = ImageFont.load_default(size=36)
    draw = ImageDraw.Draw(image)
    if caption:
        draw.text((20, 60), text, font=font, fill="white", stroke_width=3, stroke_fill="black")
    else:
        draw.text((20, 60), text, font=font, fill=(20, 20, 20))
    return np.asarray(image)


@pytest.fixture(scope="module")
def busy_frame(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    path = tmp_path_factory.mktemp("ocr") / "bg.mp4"
    argv = [
        "ffmpeg",
        "-nostdin",
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=480x270:rate=1:duration=1",
    ]
    subprocess.run(
        [*argv, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)], check=True
    )
    return sample_frames(path)[0]


def test_reads_plain_text() -> None:
    text = read_text([_render("Hello quiet world")])
    assert "hello quiet world" in text.casefold()


def test_reads_a_white_caption_on_a_busy_frame(busy_frame: np.ndarray) -> None:
    text = read_text([busy_frame, _render("free followers here", background=busy_frame, caption=True)])
    assert "free followers here" in text.casefold()


def test_blank_frames_have_no_text() -> None:
    assert read_text([np.full((120, 200, 3), 128, dtype=np.uint8)] * 2) == ""
    assert read_text([]) == ""


def test_blocked_word_in_a_frame_triggers_the_policy(busy_frame: np.ndarray) -> None:
    frames = [busy_frame, _render("get FREE FOLLOWERS now", background=busy_frame, caption=True)]
    hits = BlockedTerms.load().check(read_text(frames))
    assert TextHit(category="scam", term="free followers") in hits
    decision = decide(ModerationSignals(nsfw_score=0.0, text_hits=hits))
    assert decision.verdict is Verdict.REJECT
    assert "text_scam:free followers" in decision.reasons


def test_profanity_in_a_frame_age_restricts() -> None:
    hits = BlockedTerms.load().check(read_text([_render("this is shitty")]))
    assert hits == (TextHit(category="profanity", term="shit*"),)
    assert decide(ModerationSignals(nsfw_score=0.0, text_hits=hits)).verdict is Verdict.AGE_RESTRICT


def test_clean_text_has_no_hits() -> None:
    terms = BlockedTerms.load()
    assert terms.check(read_text([_render("cute dogs at the beach")])) == ()
    # Words that merely contain a blocked prefix or word are left alone.
    assert terms.check("an assessment of classic scunthorpe cocktails, shiitake and a bass guitar") == ()


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("FREE  Followers!!", ["free", "followers"]),
        ("Fr3e f0ll0wers", ["free", "followers"]),
        ("Ça coûte $5", ["ca", "coute", "ss"]),
        ("fuuuuck", ["fuck"]),
        ("good  feed", ["good", "feed"]),
    ],
)
def test_normalize_tokens(text: str, tokens: list[str]) -> None:
    assert normalize_tokens(text) == tokens


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("scam free followers", "expected 'category<TAB>term'"),
        ("gossip\tsomething", "unknown category"),
        ("profanity\tfoo bar*", "prefix term is a single word"),
        ("profanity\t!!!", "has no letters"),
    ],
)
def test_terms_file_validation(line: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BlockedTerms.parse(line)


def test_shipped_terms_list_loads(tmp_path: Path) -> None:
    terms = BlockedTerms.load()
    assert len(terms.phrases) + len(terms.prefixes) > 30
    custom = tmp_path / "terms.tsv"
    custom.write_text("# ours\nscam\tmagic beans\n")
    assert BlockedTerms.load(custom).check("Buy MAGIC beans") == (
        TextHit(category="scam", term="magic beans"),
    )


def test_settings_validation() -> None:
    with pytest.raises(ValueError, match="language"):
        OcrSettings(language="eng; rm -rf /")
    with pytest.raises(ValueError, match="min_confidence"):
        OcrSettings(min_confidence=120)
