"""The most frequent words and two-word phrases in a set of comments, stop words removed.

scikit-learn's `CountVectorizer` (ngram_range=(1, 2), binary: a term counts once per comment)
does the tokenizing and counting; the stop words are scikit-learn's English list plus the
Spanish and German lists of the `stop-words` package (the languages cxbot speaks), lower-cased.
Tokens are runs of two or more letters: numbers ("10", "2h") are not terms. Stop words are
dropped before phrases are formed, so "not good" counts as "good", as usual for these counts.

Counting is pure-Python work in the vectorizer (about 50 µs a comment): identical comments are
counted once and weighted, and the result for a given list of comments is memoised, so the
same page asked again with the same comments answers at once.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

TOKEN = r"(?u)\b[^\W\d_]{2,}\b"
TOP_WORDS = 15
TOP_PHRASES = 10


@dataclass(frozen=True, slots=True)
class Term:
    """A word or phrase and in how many comments it occurs."""

    term: str
    comments: int


@dataclass(frozen=True, slots=True)
class Terms:
    """The top words and phrases of a group of comments, most frequent first."""

    comments: int  # how many comments were read
    words: tuple[Term, ...]
    phrases: tuple[Term, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "comments": self.comments,
            "words": [{"term": t.term, "comments": t.comments} for t in self.words],
            "phrases": [{"term": t.term, "comments": t.comments} for t in self.phrases],
        }


@lru_cache(maxsize=1)
def stop_words() -> frozenset[str]:
    """English (scikit-learn), Spanish and German (`stop-words`) stop words, lower-cased, with
    the tokens they split into (so the vectorizer finds its stop list consistent)."""
    from sklearn.feature_extraction.text import (  # type: ignore[import-untyped]
        ENGLISH_STOP_WORDS,
    )
    from stop_words import get_stop_words  # type: ignore[import-untyped]

    words = {str(w).lower() for w in ENGLISH_STOP_WORDS}
    for language in ("es", "de"):
        words.update(str(w).lower() for w in get_stop_words(language))
    pattern = re.compile(TOKEN)
    for word in list(words):
        words.update(pattern.findall(word))
    return frozenset(words)


def top_terms(
    comments: Sequence[str], *, words: int = TOP_WORDS, phrases: int = TOP_PHRASES
) -> Terms:
    """The `words` most frequent words and `phrases` most frequent two-word phrases of the
    comments (ties in alphabetical order)."""
    return _top_terms(tuple(comments), words, phrases)


def forget_terms() -> None:
    """Empty the memo of counted comments (benchmarks time the counting itself)."""
    _top_terms.cache_clear()


@lru_cache(maxsize=8)
def _top_terms(comments: tuple[str, ...], words: int, phrases: int) -> Terms:
    # Imported here: scikit-learn takes seconds to import, and only this page needs it.
    from sklearn.feature_extraction.text import CountVectorizer

    repeats = Counter(c for c in comments if c.strip())
    if not repeats:
        return Terms(len(comments), (), ())
    texts = list(repeats)
    vectorizer = CountVectorizer(
        ngram_range=(1, 2),
        stop_words=sorted(stop_words()),
        token_pattern=TOKEN,
        lowercase=True,
        binary=True,
    )
    try:
        matrix = vectorizer.fit_transform(texts)
    except ValueError:  # nothing but stop words (an empty vocabulary)
        return Terms(len(comments), (), ())
    weights = [repeats[t] for t in texts]
    totals = matrix.T.dot(weights)  # per term: the comments it occurs in, repeats included
    ranked = sorted(
        zip(vectorizer.get_feature_names_out(), totals, strict=True),
        key=lambda pair: (-int(pair[1]), str(pair[0])),
    )
    singles = [Term(str(t), int(n)) for t, n in ranked if " " not in t]
    pairs = [Term(str(t), int(n)) for t, n in ranked if " " in t]
    return Terms(len(comments), tuple(singles[:words]), tuple(pairs[:phrases]))
