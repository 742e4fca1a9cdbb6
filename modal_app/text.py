"""Small, dependency-free text analysis shared by the phase functions."""

from __future__ import annotations

import re
from collections import Counter

STOPWORDS = frozenset(
    (  # noqa: SIM905 — a word list reads better as one string
        "a about above after again against all am an and any are as at be because been before "
        "being below between both but by can could did do does doing down during each few for "
        "from further had has have having he her here hers him his how i if in into is it its "
        "itself just me more most my no nor not now of off on once only or other our ours out "
        "over own same she should so some such than that the their them then there these they "
        "this those through to too under until up very was we were what when where which while "
        "who whom why will with would you your yours us want wants need needs get gets make makes "
        "one also"
    ).split()
)

_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"[a-zA-Z][a-zA-Z'-]+")

PAIN_CUES = (
    "problem",
    "struggle",
    "pain",
    "hard",
    "waste",
    "slow",
    "expensive",
    "can't",
    "cannot",
    "frustrat",
    "manual",
    "error",
    "lose",
    "losing",
    "difficult",
    "costly",
)
GAIN_CUES = (
    "save",
    "faster",
    "cheaper",
    "easier",
    "grow",
    "more",
    "better",
    "increase",
    "reduce",
    "automat",
    "simple",
    "instant",
)
SOLUTION_CUES = (
    "we build",
    "we are building",
    "our ",
    "platform",
    "app",
    "tool",
    "service",
    "product",
    "software",
    "marketplace",
    "api",
)
HEDGES = (
    "maybe",
    "might",
    "probably",
    "we think",
    "we believe",
    "hope",
    "assume",
    "likely",
    "should",
    "could",
)


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if s.strip()]


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def keywords(text: str, limit: int = 8) -> list[str]:
    counts = Counter(w for w in words(text) if w not in STOPWORDS and len(w) > 2)
    # Ties break alphabetically so the same brief always gives the same keywords.
    return [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]


def with_cues(items: list[str], cues: tuple[str, ...]) -> list[str]:
    return [s for s in items if any(c in s.lower() for c in cues)]


def hedge_score(sentence: str) -> float:
    """0.0 for a plain statement of fact, rising towards 1.0 with each hedge."""
    hits = sum(sentence.lower().count(h) for h in HEDGES)
    return round(min(1.0, 0.35 * hits + (0.2 if "?" in sentence else 0.0)), 2)


def overlap(a: list[str], b: list[str]) -> float:
    """Jaccard overlap of two keyword lists."""
    sa, sb = set(a), set(b)
    return round(len(sa & sb) / len(sa | sb), 3) if sa | sb else 0.0
