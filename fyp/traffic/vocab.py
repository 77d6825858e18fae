"""Fixed vocabularies of the synthetic traffic: locales, hashtags, surfaces, share channels, comments.

Each categorical list is (value, weight); weights need not sum to 1.
"""

from __future__ import annotations

__all__ = [
    "COMMENTS",
    "FOLLOW_ACTIONS",
    "HASHTAGS",
    "LOCALES",
    "NEGATIVE_COMMENTS",
    "NOT_INTERESTED_REASONS",
    "OTHER_COMMENTS",
    "POSITIVE_COMMENTS",
    "SHARE_CHANNELS",
    "SOUND_ACTIONS",
    "SURFACES",
]

# (region ISO 3166-1, language ISO 639-1, share of users). India is split between Hindi and English.
LOCALES: tuple[tuple[str, str, float], ...] = (
    ("US", "en", 0.22),
    ("BR", "pt", 0.10),
    ("ID", "id", 0.10),
    ("IN", "hi", 0.08),
    ("MX", "es", 0.07),
    ("DE", "de", 0.05),
    ("JP", "ja", 0.05),
    ("GB", "en", 0.05),
    ("FR", "fr", 0.05),
    ("IN", "en", 0.04),
    ("TR", "tr", 0.04),
    ("PH", "tl", 0.04),
    ("VN", "vi", 0.04),
    ("ES", "es", 0.04),
    ("KR", "ko", 0.03),
)

# The head of the hashtag vocabulary; the tail is generated (tag<N>). Popularity is Zipf by position.
HASHTAGS: tuple[str, ...] = (
    "fyp", "foryou", "viral", "trending", "dance", "comedy", "funny", "food", "recipe", "travel",
    "pets", "dogsoftiktok", "catsoftiktok", "fitness", "gym", "music", "fashion", "ootd", "gaming", "diy",
    "beauty", "makeup", "skincare", "sports", "football", "art", "tech", "asmr", "learnontiktok",
    "booktok", "cooking", "anime", "cars", "memes", "motivation", "nature", "challenge", "duet",
    "storytime", "lifehack",
)  # fmt: skip

SURFACES: tuple[tuple[str, float], ...] = (
    ("for_you", 0.88),
    ("following", 0.07),
    ("search", 0.03),
    ("profile", 0.02),
)

SHARE_CHANNELS: tuple[tuple[str, float], ...] = (
    ("copy_link", 0.30),
    ("whatsapp", 0.25),
    ("instagram", 0.15),
    ("messenger", 0.10),
    ("sms", 0.10),
    ("telegram", 0.05),
    ("x", 0.05),
)

# Enum symbols of the Avro schemas (LikeAction is derived from event kinds, not drawn).
FOLLOW_ACTIONS: tuple[tuple[str, float], ...] = (("FOLLOW", 0.95), ("UNFOLLOW", 0.05))
SOUND_ACTIONS: tuple[tuple[str, float], ...] = (
    ("USE_SOUND", 0.25),
    ("OPEN_SOUND_PAGE", 0.60),
    ("FAVORITE_SOUND", 0.15),
)

NOT_INTERESTED_REASONS: tuple[tuple[str | None, float], ...] = (
    (None, 0.50),
    ("not_relevant", 0.20),
    ("seen_too_often", 0.15),
    ("dislike_creator", 0.10),
    ("offensive", 0.05),
)

# Comments by tone: the model picks a tone from how much the viewer liked the video (fyp/traffic/model.py), so
# comment sentiment (udfs/sentiment.py) correlates with quality and completion. Some are not ASCII on
# purpose: the hand-rolled encoder must get UTF-8 lengths right. The "other" tone is mostly what VADER scores
# near 0 (questions, slang, emoji); its four non-English texts are praise, which the language word lists
# (udfs/sentiment_lexicons.py) score positive, so "other" leans positive.
POSITIVE_COMMENTS: tuple[tuple[str, float], ...] = (
    ("lol", 0.20),
    ("😂😂😂", 0.18),
    ("love this so much", 0.12),
    ("this is amazing", 0.10),
    ("so good omg", 0.10),
    ("haha I love it", 0.10),
    ("wow, beautiful", 0.08),
    ("best thing on my feed today", 0.06),
    ("part 2 please", 0.06),
)
OTHER_COMMENTS: tuple[tuple[str, float], ...] = (
    ("this is so real", 0.12),
    ("where is this?", 0.10),
    ("🔥", 0.12),
    ("❤️", 0.12),
    ("obsessed", 0.07),
    ("no way", 0.07),
    ("saving this", 0.06),
    ("tutorial pls", 0.06),
    ("the ending 💀", 0.07),
    ("ok but the sound tho", 0.05),
    ("¡qué bueno!", 0.04),
    ("mantap", 0.04),
    ("すごい", 0.03),
    ("top demais", 0.03),
)
NEGATIVE_COMMENTS: tuple[tuple[str, float], ...] = (
    ("boring", 0.22),
    ("this is so fake", 0.14),
    ("not funny", 0.14),
    ("waste of time", 0.12),
    ("worst video ever", 0.10),
    ("hate this", 0.10),
    ("ugh, annoying", 0.10),
    ("so bad lol", 0.08),
)
# Every comment text, by index: positive, then other, then negative (the encoder and records index this).
COMMENTS: tuple[tuple[str, float], ...] = POSITIVE_COMMENTS + OTHER_COMMENTS + NEGATIVE_COMMENTS
