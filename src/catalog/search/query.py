"""Turning what a shopper typed into terms the backends can match safely.

Only lowercase letters and digits survive normalisation, so no full-text operator (`&|!:*()'"`)
can ever reach PostgreSQL's `to_tsquery` or SQLite's FTS5 `MATCH` syntax.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

MAX_QUERY_LENGTH = 200
MAX_TERMS = 10
MAX_TERM_LENGTH = 40

# Words that carry no meaning for product search. This is PostgreSQL's `english` stop-word list
# (its index drops these words, so they can never match there) plus "without": dropping the same
# words from every query keeps SQLite's answers the same as PostgreSQL's.
STOPWORDS = frozenset(
    {"i", "me", "my", "myself", "we", "our", "ours", "ourselves", "you", "your", "yours"}
    | {"yourself", "yourselves", "he", "him", "his", "himself", "she", "her", "hers", "herself"}
    | {"it", "its", "itself", "they", "them", "their", "theirs", "themselves", "what", "which"}
    | {"who", "whom", "this", "that", "these", "those", "am", "is", "are", "was", "were", "be"}
    | {"been", "being", "have", "has", "had", "having", "do", "does", "did", "doing", "a", "an"}
    | {"the", "and", "but", "if", "or", "because", "as", "until", "while", "of", "at", "by", "for"}
    | {"with", "about", "against", "between", "into", "through", "during", "before", "after"}
    | {"above", "below", "to", "from", "up", "down", "in", "out", "on", "off", "over", "under"}
    | {"again", "further", "then", "once", "here", "there", "when", "where", "why", "how", "all"}
    | {"any", "both", "each", "few", "more", "most", "other", "some", "such", "no", "nor", "not"}
    | {"only", "own", "same", "so", "than", "too", "very", "s", "t", "can", "will", "just", "don"}
    | {"should", "now", "without"}
)

_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def _fold(text: str) -> str:
    """Lowercase ASCII where possible: "Café" -> "cafe"."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def tokenize(text: str) -> list[str]:
    words = [w for w in _WORD.findall(_fold(text)) if w.isascii() and w.isalnum()]
    return [w[:MAX_TERM_LENGTH] for w in words]


def normalize_query(q: str | None) -> str:
    """The canonical form used for analytics and caching: folded words joined by spaces."""
    if not q:
        return ""
    return " ".join(tokenize(q[:MAX_QUERY_LENGTH]))


@dataclass
class Term:
    """One word of the query and the alternatives that also satisfy it (synonyms, a typo
    correction). Each alternative is a sequence of words matched as a phrase."""

    word: str
    alternatives: list[tuple[str, ...]] = field(default_factory=list)

    @property
    def forms(self) -> list[tuple[str, ...]]:
        seen: list[tuple[str, ...]] = [(self.word,)]
        for alt in self.alternatives:
            if alt not in seen:
                seen.append(alt)
        return seen


@dataclass
class ParsedQuery:
    text: str  # normalised query
    terms: list[Term]
    corrected: dict[str, str] = field(default_factory=dict)  # typo -> correction

    @property
    def empty(self) -> bool:
        return not self.terms

    @property
    def did_you_mean(self) -> str | None:
        if not self.corrected:
            return None
        return " ".join(self.corrected.get(t.word, t.word) for t in self.terms)

    @property
    def words(self) -> list[str]:
        return [t.word for t in self.terms]


def parse_query(q: str | None) -> ParsedQuery:
    words = tokenize((q or "")[:MAX_QUERY_LENGTH])
    meaningful = [w for w in words if w not in STOPWORDS]
    unique: list[str] = []
    for w in meaningful:
        if w not in unique:
            unique.append(w)
    return ParsedQuery(text=" ".join(words), terms=[Term(w) for w in unique[:MAX_TERMS]])


def apply_synonyms(query: ParsedQuery, rules: list[tuple[str, list[str], bool]]) -> None:
    """Add alternatives from synonym rules: (input, synonyms, two_way). A two-way group is
    given as one rule per member. Multi-word synonyms become phrase alternatives."""
    by_input: dict[str, list[tuple[str, ...]]] = {}
    for source, synonyms, _two_way in rules:
        key = " ".join(tokenize(source))
        for synonym in synonyms:
            words = tuple(tokenize(synonym))
            if words and words != (key,):
                by_input.setdefault(key, []).append(words)
    for term in query.terms:
        for alt in by_input.get(term.word, []):
            if alt not in term.alternatives:
                term.alternatives.append(alt)
