"""Guess a comment's language cheaply, to pick its sentiment scorer: English (VADER) or a language's list.

Why not the event's `language` field: it is the user's locale, not the comment's language (a Japanese-locale
user may write in English, and the traffic generator draws comment texts independently of the locale). Why not
a language-identification package: it would add a dependency and its own per-comment cost to every Flink Python
worker, and still answer with languages we have no list for; the lists already hold the words that matter, and
counting them is a few dictionary look-ups a word (not measured against such a package).

The guess: a non-Latin script decides alone (Hangul: ko; kana or Han: ja; Devanagari: hi), counted over the
first MAX_SCORED_CHARS characters. Otherwise each language's list (udfs/sentiment_lexicons.py) counts the
comment's words of two letters or more that it knows (alone or in a phrase), and English counts its words in
VADER's lexicon (of 3 letters or more: shorter entries are emoticon parts and slang) and a few function words.
The most words wins, English on a tie, and English when no list knows any word (emoji only, names, numbers), so
English comments keep VADER's exact score. It misses mixed-language comments (the language with more known
words takes all) and languages we have no list for (they go to VADER, which scores them ~0, as before).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType

from udfs.sentiment_lexicons import (
    LANGUAGES,
    MAX_SCORED_CHARS,
    MAX_WORDS_MODE_CHARS,
    MIN_ENGLISH_CHARS,
    lexicon,
    normalise,
    words,
    words_head,
)

__all__ = ["ENGLISH", "guess_language"]

ENGLISH = "en"

# Function words that tell English from the other Latin-script languages; VADER's lexicon adds its words.
_ENGLISH_WORDS = frozenset({
    "the", "this", "that", "these", "those", "is", "are", "was", "were", "it", "its", "i", "you", "your", "he",
    "she", "they", "we", "my", "our", "his", "her", "so", "of", "and", "to", "in", "on", "for", "with", "what",
    "where", "who", "how", "why", "when", "just", "really", "very", "be", "been", "being", "have", "has", "had",
    "do", "does", "did", "can", "could", "would", "should", "will", "not", "at", "from", "all", "ever", "here",
    "there", "an", "no", "ok", "okay", "lol", "omg", "pls", "plz", "tho", "wow", "yes", "yeah", "but", "or", "if",
    "as", "by", "up", "out", "about", "like", "get", "got", "one", "more", "now", "than", "then", "some", "any",
    "only", "too",
})  # fmt: skip

# The scripts that decide alone, and their language.
_SCRIPTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile("[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]"), "ko"),  # Hangul syllables and jamo
    (re.compile("[\u3040-\u30ff\u4e00-\u9fff]"), "ja"),  # kana; Han (no Chinese list: we have no zh traffic)
    (re.compile("[\u0900-\u097f]"), "hi"),  # Devanagari
)


def _script_language(text: str) -> str | None:
    head = text[:MAX_SCORED_CHARS]
    counts = [(len(pattern.findall(head)), language) for pattern, language in _SCRIPTS]
    found, language = max(counts)
    return language if found else None


@dataclass(frozen=True)
class _Index:
    """What the words-mode lists know, for one way of normalising (with or without accents), merged so that
    a word costs one look-up plus one per distinct prefix length, whatever the number of languages."""

    words: Mapping[str, frozenset[str]]  # word (alone or in a phrase) -> languages
    prefixes: Mapping[str, frozenset[str]]  # prefix term -> languages
    prefix_lengths: tuple[int, ...]  # longest first

    def languages(self, word: str) -> frozenset[str]:
        found = self.words.get(word, frozenset())
        for length in self.prefix_lengths:
            if length <= len(word):
                found = found | self.prefixes.get(word[:length], frozenset())
        return found


@lru_cache(maxsize=2)
def _index(strip_marks: bool) -> _Index:
    words_to: dict[str, set[str]] = {}
    prefixes_to: dict[str, set[str]] = {}
    for language, rules in LANGUAGES.items():
        if rules.mode == "words" and rules.strip_marks == strip_marks:
            lex = lexicon(language)
            for word in lex.vocabulary:
                words_to.setdefault(word, set()).add(language)
            for prefix in lex.prefixes:
                prefixes_to.setdefault(prefix, set()).add(language)
    return _Index(
        words=MappingProxyType({w: frozenset(langs) for w, langs in words_to.items()}),
        prefixes=MappingProxyType({p: frozenset(langs) for p, langs in prefixes_to.items()}),
        prefix_lengths=tuple(sorted({len(p) for p in prefixes_to}, reverse=True)),
    )


def guess_language(text: str, english_words: frozenset[str] | Mapping[str, float] = frozenset()) -> str:
    """"en" or a key of LANGUAGES. english_words: further English words (the caller passes VADER's lexicon).

    >>> guess_language("muito bom"), guess_language("this is good"), guess_language("最高"), guess_language("🔥")
    ('pt', 'en', 'ja', 'en')
    """
    script = _script_language(text)
    if script is not None:
        return script
    head = words_head(text[:MAX_WORDS_MODE_CHARS])
    if not head:
        return ENGLISH  # no word at all: emoji, punctuation
    folded = words(normalise(head, strip_marks=False))
    stripped = words(normalise(head, strip_marks=True)) if not head.isascii() else folded
    # One-letter words ("a", "c", "y", "i") are in too many languages to tell them apart.
    folded = [w for w in folded if len(w) > 1]
    stripped = [w for w in stripped if len(w) > 1]
    english = sum(1 for w in folded if w in _ENGLISH_WORDS or (len(w) >= MIN_ENGLISH_CHARS and w in english_words))
    counts: Counter[str] = Counter()
    for spelling, strip_marks in ((Counter(stripped), True), (Counter(folded), False)):
        index = _index(strip_marks)
        for word, times in spelling.items():  # each distinct word once: repeats cost nothing more
            for language in index.languages(word):
                counts[language] += times
    if not counts:
        return ENGLISH
    hits = max(counts.values())
    language = next(lang for lang in LANGUAGES if counts[lang] == hits)  # ties between lists: LANGUAGES order
    return language if hits > english else ENGLISH
