"""Per-language sentiment word lists for comments that are not English: load once, score in bounded time.

Why hand-rolled: no multilingual sentiment model or lexicon package was usable (docs/SENTIMENT.md lists what
was checked): the models download their weights at run time (and a transformer is far over the ~1 ms budget a
comment), and the lexicon packages found are GPL, non-commercial, online, or cover one language each. These
lists are small (57-146 entries a language), reviewed, and cover the traffic generator's languages
(fyp/traffic/vocab.py LOCALES).

A list is `udfs/data/sentiment/<language>.tsv`: `term<TAB>value`, where value is a polarity -4..4 (VADER's
scale: 2 is a plain "good", 3 "amazing"), `0` for a word that only tells the language (a function word, an
intensifier), or `not` for a negator. A term ending in `*` matches words that start with it (Turkish and
Indonesian suffixes); a term of two or three words matches that phrase, and the longest match wins, so
"perda de tempo" beats "tempo". Languages written without spaces between words (Japanese, Korean) are matched
as substrings, longest first, and spell their negated forms as entries ("面白くない" beats "面白").

Scoring, kept as simple as is honest: the sum of matched polarities, a polarity flipped and damped (x -0.74,
VADER's factor) when a negator stands within the language's window before or after it, plus emoji
(`emoji.tsv`), normalised to -1..1 as VADER normalises (s / sqrt(s^2 + 15)). Words the list lacks score 0,
except where the language mixes in English (Taglish, Hinglish, ...): there an unknown word takes its VADER
valence. No intensifiers, no "but", no sarcasm.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from itertools import islice
from types import MappingProxyType
from typing import Literal

__all__ = [
    "LANGUAGES",
    "MAX_SCORED_CHARS",
    "MAX_SCORED_WORDS",
    "MAX_WORDS_MODE_CHARS",
    "MIN_ENGLISH_CHARS",
    "LanguageRules",
    "Lexicon",
    "build_lexicon",
    "lexicon",
    "normalise",
    "score",
    "words",
    "words_head",
]

MAX_SCORED_WORDS = 64  # as for VADER (udfs/sentiment.py): ~4x a long comment
MAX_SCORED_CHARS = 256  # unspaced scripts: ~2x the longest Japanese comment the app allows (~150 characters)
MAX_TERM_CHARS = 32  # a longer "word" is noise, not a term
# Words mode reads at most this much text: 64 words of the longest term and a separator each.
MAX_WORDS_MODE_CHARS = MAX_SCORED_WORDS * (MAX_TERM_CHARS + 1)
MAX_PHRASE_WORDS = 3
MAX_ENTRIES = 2_000  # a reviewed list is far smaller; a bigger file is a mistake
# VADER's lexicon has short emoticon parts and slang ("l" 2.0, "po" -2.6) that are plain words elsewhere.
MIN_ENGLISH_CHARS = 3
_NEGATION_SCALAR = -0.74  # VADER's
_ALPHA = 15.0  # VADER's normalisation constant


@dataclass(frozen=True, kw_only=True)
class LanguageRules:
    """How one language is matched.

    mode: "words" (split on spaces and punctuation) or "substrings" (no spaces between words).
    negate_before / negate_after: how many words before / after a polarity word a negator flips it
        ("not good": before; Turkish "güzel değil", Hindi "achha nahi": after); words mode only.
    strip_marks: match without accents (the Combining Diacritical Marks, U+0300-U+036F: "nao" = "não"), since
        commenters often drop them; off for Vietnamese, whose tones tell words apart ("dở" bad, "do" because),
        and for scripts whose marks are letters.
    english_fallback: an unknown word takes its VADER valence (languages commonly mixed with English).
    """

    mode: Literal["words", "substrings"] = "words"
    negate_before: int = 3
    negate_after: int = 0
    strip_marks: bool = True
    english_fallback: bool = True


# The traffic generator's languages other than English (fyp/traffic/vocab.py LOCALES), ISO 639-1.
LANGUAGES: Mapping[str, LanguageRules] = MappingProxyType({
    "pt": LanguageRules(),
    "es": LanguageRules(),
    "fr": LanguageRules(),
    "de": LanguageRules(negate_after=2),  # "gefällt mir nicht"
    "id": LanguageRules(),
    "tl": LanguageRules(),
    "tr": LanguageRules(negate_before=0, negate_after=1),  # "komik değil"; suffix negation is in the list
    "vi": LanguageRules(strip_marks=False),
    # Hindi, Japanese, Korean keep their marks: stripping would drop Devanagari's virama, kana's dakuten.
    "hi": LanguageRules(negate_before=1, negate_after=2, strip_marks=False),  # "achha nahi", "pasand nahi aaya"
    "ja": LanguageRules(mode="substrings", strip_marks=False, english_fallback=False),
    "ko": LanguageRules(mode="substrings", strip_marks=False, english_fallback=False),
})  # fmt: skip

NEGATOR = "not"
_WORD = re.compile(r"[\w\u0900-\u097f]+")  # \w misses Devanagari's vowel signs (category Mc/Mn)
# Combining Diacritical Marks: every accent of the Latin-script languages with lists; C-speed to remove.
_LATIN_MARKS = re.compile("[\u0300-\u036f]")
_SPECIAL = str.maketrans({"đ": "d", "\u0131": "i"})  # d with stroke, dotless i: NFKD keeps them


def normalise(text: str, *, strip_marks: bool) -> str:
    """Case-folded NFC text; with `strip_marks`, without combining marks (accents, tones, cedillas).

    >>> normalise("Não É", strip_marks=True), normalise("Dở", strip_marks=False)
    ('nao e', 'dở')
    """
    text = text.casefold()
    if text.isascii():
        return text  # most comments: nothing to compose or strip
    if not strip_marks:
        return unicodedata.normalize("NFC", text)
    decomposed = unicodedata.normalize("NFKD", text.translate(_SPECIAL))
    return unicodedata.normalize("NFC", _LATIN_MARKS.sub("", decomposed))


def words(text: str, limit: int = MAX_SCORED_WORDS) -> list[str]:
    """The first `limit` words of already normalised text; reads no further than it needs."""
    return [match.group() for match in islice(_WORD.finditer(text), limit)]


def words_head(text: str, limit: int = MAX_SCORED_WORDS) -> str:
    """`text` up to the end of its `limit`-th word (all of it if it has fewer): what is worth normalising."""
    matches = list(islice(_WORD.finditer(text), limit))
    return text[: matches[-1].end()] if matches else ""


@dataclass(frozen=True, kw_only=True)
class Lexicon:
    """One language's list, normalised as its rules say: terms (words and phrases), prefixes, negators."""

    language: str
    rules: LanguageRules
    terms: Mapping[str, float]
    prefixes: Mapping[str, float]
    prefix_lengths: tuple[int, ...]  # the distinct lengths of `prefixes`, longest first
    negators: frozenset[str]
    longest: int  # characters (substrings mode) or words (words mode) in the longest term
    vocabulary: frozenset[str]  # every word of its terms, phrases, negators: what the language guess counts
    first_chars: frozenset[str]  # the first character of every term (substrings mode skips the others)

    def prefix_value(self, word: str) -> float | None:
        """The polarity of the longest prefix term `word` starts with; None if none."""
        for end in self.prefix_lengths:  # longest prefix first
            if end <= len(word):
                value = self.prefixes.get(word[:end])
                if value is not None:
                    return value
        return None


def _lines(name: str) -> list[str]:
    return resources.files("udfs").joinpath("data", "sentiment", f"{name}.tsv").read_text("utf-8").splitlines()


def _entries(name: str, lines: Iterable[str]) -> Iterator[tuple[int, str, str]]:
    for number, line in enumerate(lines, start=1):
        if line.strip() and not line.startswith("#"):
            term, sep, value = line.partition("\t")
            if not sep or not term.strip() or "\t" in value:
                raise ValueError(f"{name}.tsv line {number}: expected `term<TAB>value`, got {line!r}")
            yield number, term.strip(), value.strip()


@cache
def lexicon(language: str) -> Lexicon:
    """The list of `language` (a key of LANGUAGES), read and checked once per process."""
    rules = LANGUAGES.get(language)
    if rules is None:
        raise ValueError(f"no sentiment list for language {language!r}; have {sorted(LANGUAGES)}")
    return build_lexicon(language, rules, _lines(language))


def build_lexicon(language: str, rules: LanguageRules, lines: Iterable[str]) -> Lexicon:
    """Parse and check a list's lines (the file format above); raises ValueError naming the bad line."""
    terms: dict[str, float] = {}
    prefixes: dict[str, float] = {}
    negators: set[str] = set()
    for number, raw, value in _entries(language, lines):
        where = f"{language}.tsv line {number}"
        term = normalise(raw, strip_marks=rules.strip_marks)
        prefix = term.endswith("*")
        term = term.rstrip("*")
        if not term or len(term) > MAX_TERM_CHARS or len(term.split()) > MAX_PHRASE_WORDS:
            raise ValueError(f"{where}: a term is 1..{MAX_TERM_CHARS} characters, <= {MAX_PHRASE_WORDS} words")
        if rules.mode == "words" and words(term) != term.split():
            raise ValueError(f"{where}: {raw!r} does not split into the words a comment would")
        if prefix and (rules.mode != "words" or " " in term):
            raise ValueError(f"{where}: a prefix term (`*`) is one word, in a words-mode language")
        if value == NEGATOR:
            negators.add(term)
            continue
        try:
            polarity = float(value)
        except ValueError:
            raise ValueError(f"{where}: value must be a number -4..4 or `{NEGATOR}`, got {value!r}") from None
        if not -4.0 <= polarity <= 4.0:
            raise ValueError(f"{where}: polarity {polarity} is outside -4..4")
        (prefixes if prefix else terms)[term] = polarity
    if len(terms) + len(prefixes) + len(negators) > MAX_ENTRIES:
        raise ValueError(f"{language}.tsv has more than {MAX_ENTRIES} entries")
    if not terms and not prefixes:
        raise ValueError(f"{language}.tsv has no polarity terms")
    sizes = [len(t) if rules.mode == "substrings" else len(t.split()) for t in (*terms, *negators)]
    return Lexicon(
        language=language, rules=rules, terms=MappingProxyType(terms), prefixes=MappingProxyType(prefixes),
        prefix_lengths=tuple(sorted({len(p) for p in prefixes}, reverse=True)), negators=frozenset(negators),
        longest=max(sizes, default=1), vocabulary=frozenset(w for t in (*terms, *negators) for w in t.split()),
        first_chars=frozenset(t[0] for t in terms),
    )


@lru_cache(maxsize=1)
def _emoji() -> Mapping[str, float]:
    table = {}
    for number, term, value in _entries("emoji", _lines("emoji")):
        polarity = float(value) if re.fullmatch(r"-?\d+(\.\d+)?", value) else math.nan
        if len(term) != 1 or not -4.0 <= polarity <= 4.0:
            raise ValueError(f"emoji.tsv line {number}: one code point and a polarity -4..4, got {term!r} {value!r}")
        table[term] = polarity
    return MappingProxyType(table)


def _word_hits(lex: Lexicon, tokens: list[str], english: Callable[[str], float]) -> float:
    """Sum of polarities over `tokens`, longest phrase first, each flipped by a negator in its window."""
    hits: list[tuple[int, int, float]] = []  # (first word, last word, polarity)
    negator_at: list[int] = []
    i = 0
    while i < len(tokens):
        for size in range(min(lex.longest, len(tokens) - i), 0, -1):
            phrase = " ".join(tokens[i : i + size])
            if phrase in lex.negators:
                negator_at.append(i)
                break
            value = lex.terms.get(phrase)
            if value is None and size == 1:
                value = lex.prefix_value(phrase)
                if value is None and lex.rules.english_fallback and len(phrase) >= MIN_ENGLISH_CHARS:
                    value = english(phrase) or None
            if value is not None:
                if value:
                    hits.append((i, i + size - 1, value))
                break
        else:
            size = 1
        i += size
    # A negator flips the words that start within negate_before after it, or end within negate_after before it;
    # marked once per negator, so the cost stays linear in the words.
    rules = lex.rules
    starts_negated = [False] * (len(tokens) + 1)
    ends_negated = [False] * (len(tokens) + 1)
    for n in negator_at:
        for k in range(n + 1, min(n + rules.negate_before, len(tokens)) + 1):
            starts_negated[k] = True
        for k in range(max(n - rules.negate_after, 0), n):
            ends_negated[k] = True
    total = 0.0
    for first, last, value in hits:
        total += value * _NEGATION_SCALAR if starts_negated[first] or ends_negated[last] else value
    return total


def _substring_hits(lex: Lexicon, text: str) -> float:
    """Sum of polarities of the longest terms found scanning `text` left to right; no overlaps."""
    total = 0.0
    i = 0
    while i < len(text):
        if text[i] not in lex.first_chars:  # most characters start no term: one set look-up
            i += 1
            continue
        for size in range(min(lex.longest, len(text) - i), 0, -1):
            value = lex.terms.get(text[i : i + size])
            if value is not None:
                total += value
                i += size
                break
        else:
            i += 1
    return total


def score(text: str, language: str, english: Callable[[str], float] = lambda _: 0.0) -> float:
    """The sentiment of `text` in `language`, -1..1, from its list and emoji; 0.0 when nothing matched.
    english: a word's English valence, used where the language's rules allow (VADER's lexicon, by the caller).

    >>> score("muito bom, amei", "pt") > 0.5, score("não gostei", "pt") < 0
    (True, True)
    """
    lex = lexicon(language)
    emoji = _emoji()
    clipped = text[: MAX_SCORED_CHARS if lex.rules.mode == "substrings" else MAX_WORDS_MODE_CHARS]
    total = 0.0
    if not emoji.keys().isdisjoint(clipped):  # a C-level scan first: most comments have none of these
        seen = 0
        for char in clipped:  # emoji, counted like words, up to the same cap
            value = emoji.get(char)
            if value is not None:
                total += value
                seen += 1
                if seen == MAX_SCORED_WORDS:
                    break
    head = clipped if lex.rules.mode == "substrings" else words_head(clipped)
    normalised = normalise(head, strip_marks=lex.rules.strip_marks)
    if lex.rules.mode == "substrings":
        total += _substring_hits(lex, normalised)
    else:
        total += _word_hits(lex, words(normalised), english)
    return 0.0 if total == 0 else total / math.sqrt(total * total + _ALPHA)
