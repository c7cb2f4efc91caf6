"""The most frequent words and two-word phrases in a set of comments, stop words removed.

scikit-learn's `CountVectorizer` analyzer (ngram_range=(1, 2)) turns a comment into its terms;
a term counts once per comment. The stop words are scikit-learn's English list plus the Spanish
and German lists of the `stop-words` package (the languages cxbot speaks), lower-cased. Tokens
are runs of two or more letters: numbers ("10", "2h") are not terms. Stop words are dropped
before phrases are formed, so "not good" counts as "good", as usual for these counts.

Analysing a comment is pure-Python work (about 50 µs); each distinct comment is analysed once
and its terms kept (a bounded memo, most recently used first), so a page asked again, or over
a range that mostly overlaps the last one, only analyses the comments it has not seen.
"""

from __future__ import annotations

import re
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

TOKEN = r"(?u)\b[^\W\d_]{2,}\b"
TOP_WORDS = 15
TOP_PHRASES = 10
MEMO_SIZE = 20_000  # comments whose terms are kept: some tens of megabytes at most


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


@lru_cache(maxsize=1)
def _analyzer() -> Callable[[str], list[str]]:
    # Imported here: scikit-learn takes seconds to import, and only this page needs it.
    from sklearn.feature_extraction.text import CountVectorizer

    vectorizer = CountVectorizer(
        ngram_range=(1, 2), stop_words=sorted(stop_words()), token_pattern=TOKEN, lowercase=True
    )
    analyze: Callable[[str], list[str]] = vectorizer.build_analyzer()
    return analyze


class _TermMemo:
    """The terms of recently seen comments, at most `size` of them (thread-safe)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._terms: OrderedDict[str, frozenset[str]] = OrderedDict()
        self._lock = threading.Lock()

    def terms(self, comments: Iterable[str]) -> Iterator[frozenset[str]]:
        analyze = _analyzer()
        for comment in comments:
            with self._lock:
                found = self._terms.get(comment)
                if found is not None:
                    self._terms.move_to_end(comment)
            if found is None:
                found = frozenset(analyze(comment))
                with self._lock:
                    self._terms[comment] = found
                    if len(self._terms) > self.size:
                        self._terms.popitem(last=False)
            yield found

    def clear(self) -> None:
        with self._lock:
            self._terms.clear()


_MEMO = _TermMemo(MEMO_SIZE)


def forget_terms() -> None:
    """Empty the memo of analysed comments (benchmarks time a first page view with it)."""
    _MEMO.clear()


def top_terms(
    comments: Sequence[str], *, words: int = TOP_WORDS, phrases: int = TOP_PHRASES
) -> Terms:
    """The `words` most frequent words and `phrases` most frequent two-word phrases of the
    comments, by how many comments use them (ties in alphabetical order)."""
    counts: Counter[str] = Counter()
    for terms in _MEMO.terms(c for c in comments if c.strip()):
        counts.update(terms)
    ranked = sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))
    singles = [Term(t, n) for t, n in ranked if " " not in t]
    pairs = [Term(t, n) for t, n in ranked if " " in t]
    return Terms(len(comments), tuple(singles[:words]), tuple(pairs[:phrases]))
