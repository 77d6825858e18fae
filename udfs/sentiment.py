"""Comment sentiment: a lexicon score in [-1, 1], with no model and nothing downloaded.

English comments are scored by VADER; comments in the traffic generator's other languages by that language's
list (udfs/sentiment_lexicons.py), picked by a cheap guess at the comment's language (udfs/comment_language.py).
docs/SENTIMENT.md has the accuracy of each on a hand-labelled sample.

VADER (PyPI `vaderSentiment`, MIT) ships its word and emoji lexicons inside the wheel, handles the short,
emoji-heavy, slangy text of comments (negation, "so", "!!!", caps), and scores ~50k short texts/s on one core,
so it can run per comment inside a Flink job. A lexicon of our own would need curating and testing that VADER
already had; a bundled transformer would be ~100x slower per comment. Limits: VADER is English only (the lists
cover the other languages we see; a language with no list scores ~0.0, "neutral"), and some emoji read oddly
(🔥 is "fire", mildly negative).

Bounded cost: VADER's time grows with the square of the word count (each emoji becomes a two- or three-word
description): 2 KB of text took 26 ms and 200 emoji 32 ms, and 1 MB would take hours while the job's subtask stood
still. So only the first MAX_SCORED_WORDS words are scored, counted after emoji become words; the expansion and
the cut are done here in one linear pass, so VADER never sees more (tests/unit/udfs/test_sentiment.py times the worst
inputs at the cap). Comments are short (the app allows ~150 characters), so real scores are unchanged: the same
test checks that texts within the cap score exactly as VADER scores them. The language guess and the lists read
bounded heads of the text too (tests/unit/udfs/test_sentiment_languages.py times every language at the cap).
"""

from __future__ import annotations

from functools import lru_cache

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from udfs import sentiment_lexicons
from udfs.comment_language import ENGLISH, guess_language

__all__ = ["MAX_SCORED_WORDS", "NEGATIVE_BELOW", "POSITIVE_FROM", "comment_sentiment", "scored_text"]

# VADER's own recommended cut-offs on the compound score.
POSITIVE_FROM = 0.05
NEGATIVE_BELOW = -0.05
MAX_SCORED_WORDS = 64  # ~4x a long comment; ~1 ms at worst (tests/unit/udfs/test_sentiment.py)


@lru_cache(maxsize=1)
def _analyzer() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()  # reads the bundled lexicons once per process


def comment_sentiment(text: str | None) -> float:
    """The sentiment of a comment: -1 (most negative) .. 1 (most positive); 0.0 for empty text. VADER's compound
    score for English, the language's list for the others we have one for (udfs/sentiment_lexicons.py).

    >>> comment_sentiment("love this so much") > 0.5
    True
    >>> comment_sentiment("worst video ever") < -0.5
    True
    >>> comment_sentiment("que vídeo chato") < -0.05 < 0.05 < comment_sentiment("めっちゃかわいい")
    True
    >>> comment_sentiment(None)
    0.0
    """
    if not text:
        return 0.0
    analyzer = _analyzer()
    language = guess_language(text, analyzer.lexicon)
    if language != ENGLISH:
        return sentiment_lexicons.score(text, language, _english_valence)
    return float(analyzer.polarity_scores(scored_text(text))["compound"])


def _english_valence(word: str) -> float:
    """VADER's valence of one lower-case word, 0.0 if it has none: for lists that take English loanwords."""
    return float(_analyzer().lexicon.get(word, 0.0))


def scored_text(text: str, max_words: int = MAX_SCORED_WORDS) -> str:
    """The part of `text` VADER scores: its first `max_words` words, emoji already turned into their
    descriptions exactly as VADER would (a space before one unless after a space, none after).

    Linear in the characters read, and stops reading once `max_words` words are complete.

    >>> scored_text("so good 😍 wow", max_words=3)
    'so good smiling'
    """
    emojis = _analyzer().emojis
    if emojis.keys().isdisjoint(text) and len(text.split(None, max_words)) <= max_words:
        return text.strip()  # nothing to expand or cut (most comments): C-level scans only
    pieces: list[str] = []
    words = 0
    in_word = False
    prev_space = True
    for char in text:
        piece = emojis.get(char)
        if piece is not None:
            piece = piece if prev_space else " " + piece
            prev_space = False
        else:
            piece = char
            prev_space = char == " "
        for c in piece:  # count word starts; stop before the word past the cap begins
            if c.isspace():
                in_word = False
            elif not in_word:
                if words == max_words:
                    return "".join(pieces).strip()
                words += 1
                in_word = True
            pieces.append(c)
    return "".join(pieces).strip()
