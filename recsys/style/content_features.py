"""Content features of a product for the style tagger: category, attribute values, title words.

Numbers and size codes are left out: a tile's size is not its style. Every feature is a binary
indicator named ``kind=value`` (``cat=tile``, ``color=grey``,
``w=porcelain``), so a vocabulary is a plain list of strings that can be stored as JSON.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys.data.catalog import ATTRIBUTE_COLUMNS, Catalog

_WORD_RE = re.compile(r"[a-z]{3,}")


def title_words(title: str) -> list[str]:
    """Lower-case words of 3+ letters (digits and sizes carry no style)."""
    return _WORD_RE.findall(title.lower())


def _features(
    category: str | None, attrs: tuple[Any, ...], extra: dict[str, Any], title: str
) -> list[str]:
    names: list[str] = []
    if category:
        names.append(f"cat={category}")
    names.extend(f"{col}={v}" for col, v in zip(ATTRIBUTE_COLUMNS, attrs, strict=True) if v)
    for key, value in sorted(extra.items()):
        text = str(value).strip().lower() if isinstance(value, str | bool) else ""
        # measurements and size codes ("60x60", "XL", 2.5) say nothing about style
        if len(text) > 1 and not any(ch.isdigit() for ch in text):
            names.append(f"{key}={text}")
    names.extend(f"w={w}" for w in title_words(title))
    return list(dict.fromkeys(names))


def item_feature_names(catalog: Catalog, row: int) -> list[str]:
    """The features of one catalog row (deduplicated, stable order)."""
    rec = catalog.frame.iloc[row]
    return _features(
        rec["category"], tuple(rec[c] for c in ATTRIBUTE_COLUMNS), rec["attributes"], rec["title"]
    )


def catalog_features(catalog: Catalog) -> list[list[str]]:
    """Feature names of every catalog row, in row order."""
    f = catalog.frame
    attrs = zip(*(f[c].tolist() for c in ATTRIBUTE_COLUMNS), strict=True)
    return [
        _features(cat, a, extra, title)
        for cat, a, extra, title in zip(
            f["category"].tolist(),
            attrs,
            f["attributes"].tolist(),
            f["title"].tolist(),
            strict=True,
        )
    ]


class ContentVocabulary:
    """Maps feature names to columns; keeps features seen on at least ``min_count`` items."""

    def __init__(self, min_count: int = 2) -> None:
        self.min_count = min_count

    def fit(self, features: Sequence[Iterable[str]]) -> ContentVocabulary:
        counts = Counter(f for fs in features for f in fs)
        self.names_ = sorted(f for f, c in counts.items() if c >= self.min_count)
        self.index_ = {f: j for j, f in enumerate(self.names_)}
        return self

    def transform(self, features: Sequence[Iterable[str]]) -> sp.csr_matrix:
        """Binary (n_items, n_features) float32 CSR; unknown feature names are ignored."""
        indptr = [0]
        indices: list[int] = []
        for fs in features:
            cols = sorted({self.index_[f] for f in fs if f in self.index_})
            indices.extend(cols)
            indptr.append(len(indices))
        data = np.ones(len(indices), dtype=np.float32)
        return sp.csr_matrix(
            (data, np.asarray(indices, np.int32), np.asarray(indptr, np.int64)),
            shape=(len(indptr) - 1, len(self.names_)),
        )
