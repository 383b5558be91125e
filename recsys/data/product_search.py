"""Relevance-ranked product search over one catalog: SQLite's FTS5 index (bm25 with field
weights, prefix queries) plus rapidfuzz to correct a misspelt word to the nearest word the
catalog actually uses.

Why not substring matching: "wall paint" then finds every paintable wallpaper in catalog
order and the first wall paint is result 88. Here an item whose *category* is what the query
names comes first, then bm25 ranks the rest with the category and title weighted above the SKU.
Every query word must match (as a word or a word prefix: "lamin" finds laminate), after
correcting words the catalog does not contain ("lamnate" -> "laminate").

The index lives in an in-memory SQLite database built on first use (a few ms per thousand
items); queries are serialised by a lock, which is plenty for a look-up endpoint.
"""

from __future__ import annotations

import bisect
import re
import sqlite3
import threading
from collections.abc import Sequence

import numpy as np
from rapidfuzz import fuzz, process

WORD = re.compile(r"[^\W_]+", re.UNICODE)
CATEGORY_WEIGHT = 8.0
TITLE_WEIGHT = 4.0
SKU_WEIGHT = 1.0
TYPO_MIN_SCORE = 80.0  # rapidfuzz ratio (0-100) for a word to stand in for a misspelt one
TYPO_MIN_LENGTH = 4  # shorter words are too ambiguous to correct


def words(text: str) -> list[str]:
    """Lower-case words as FTS5's unicode61 tokenizer splits them ("wall-paint" -> wall, paint)."""
    return WORD.findall(text.lower())


class ProductSearch:
    """Search index over ``skus``, ``titles`` and ``categories`` (row i is catalog row i)."""

    def __init__(
        self, skus: Sequence[str], titles: Sequence[str], categories: Sequence[str | None]
    ) -> None:
        self._n = len(skus)
        self._categories = [c or "" for c in categories]
        self._lock = threading.Lock()
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._db.execute(
            "CREATE VIRTUAL TABLE items USING fts5(category, title, sku, tokenize='unicode61 remove_diacritics 2')"
        )
        self._db.executemany(
            "INSERT INTO items(rowid, category, title, sku) VALUES (?, ?, ?, ?)",
            (
                (i, self._categories[i].replace("-", " "), str(titles[i]), str(skus[i]))
                for i in range(self._n)
            ),
        )
        self._db.execute("CREATE VIRTUAL TABLE vocab USING fts5vocab(items, 'row')")
        self._vocab = sorted(t for (t,) in self._db.execute("SELECT term FROM vocab"))
        self._vocab_set = set(self._vocab)
        by_words: dict[tuple[str, ...], list[int]] = {}
        for i, c in enumerate(self._categories):
            if c:
                by_words.setdefault(tuple(words(c)), []).append(i)
        self._category_rows = {k: np.asarray(v, np.int64) for k, v in by_words.items()}

    def __len__(self) -> int:
        return self._n

    def corrected(self, query: str) -> list[str] | None:
        """The query's words, each kept when the catalog has it or a word it begins, else
        replaced by the closest catalog word; None when a word has no close match."""
        out = []
        for w in words(query):
            if w in self._vocab_set or self._has_prefix(w):
                out.append(w)
                continue
            best = (
                process.extractOne(w, self._vocab, scorer=fuzz.ratio, score_cutoff=TYPO_MIN_SCORE)
                if len(w) >= TYPO_MIN_LENGTH
                else None
            )
            if best is None:
                return None
            out.append(best[0])
        return out

    def search(self, query: str) -> np.ndarray:
        """Rows matching every word of ``query``, most relevant first: items of the category the
        query names, then by bm25 (category and title weighted above the SKU), then row order.
        An empty query matches everything in catalog order."""
        terms = self.corrected(query)
        if terms is None:
            return np.empty(0, np.int64)
        if not terms:
            return np.arange(self._n, dtype=np.int64)
        match = " AND ".join(f'"{t}"*' for t in terms)
        with self._lock:
            hits = self._db.execute(
                "SELECT rowid, bm25(items, ?, ?, ?) FROM items WHERE items MATCH ?",
                (CATEGORY_WEIGHT, TITLE_WEIGHT, SKU_WEIGHT, match),
            ).fetchall()
        if not hits:
            return np.empty(0, np.int64)
        rows = np.fromiter((r for r, _ in hits), np.int64, len(hits))
        rank = np.fromiter((s for _, s in hits), np.float64, len(hits))  # lower is better
        named = self._category_rows.get(tuple(terms))
        first = np.isin(rows, named) if named is not None else np.zeros(len(rows), bool)
        return rows[np.lexsort((rows, rank, ~first))]

    def _has_prefix(self, w: str) -> bool:
        i = bisect.bisect_left(self._vocab, w)
        return i < len(self._vocab) and self._vocab[i].startswith(w)
