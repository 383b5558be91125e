"""The product catalog contract: one row per SKU, validated on load."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.data.errors import DataContractError
from recsys.data.product_search import ProductSearch
from recsys.data.tables import first_bad_row, read_table, require_columns, to_numeric
from recsys.data.taxonomy import SLUG_RE, StyleTaxonomy, load_taxonomy
from recsys.ids import IdIndex

REQUIRED_COLUMNS = ("sku", "title", "category", "price", "in_stock", "styles")
ATTRIBUTE_COLUMNS = ("color", "material", "finish", "pattern")
STYLE_SEPARATOR = "|"
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


@dataclass(frozen=True)
class Catalog:
    """A validated catalog.

    ``frame`` has one row per SKU in row order (row i is item i everywhere in the models) with
    columns sku, title, category (str or None), price (float), in_stock (bool), the attribute
    columns, ``attributes`` (dict of extra key/values) and ``styles`` (tuple of slugs).
    """

    frame: pd.DataFrame
    taxonomy: StyleTaxonomy
    ids: IdIndex = field(init=False)
    categories: tuple[str, ...] = field(init=False)
    category_codes: np.ndarray = field(init=False)  # (n,), int32, -1 = no category

    def __post_init__(self) -> None:
        object.__setattr__(self, "ids", IdIndex(self.frame["sku"]))
        cats = self.frame["category"]
        names = tuple(sorted({c for c in cats if c}))
        lookup = {c: i for i, c in enumerate(names)}
        codes = np.fromiter((lookup.get(c, -1) if c else -1 for c in cats), np.int32, len(cats))
        object.__setattr__(self, "categories", names)
        object.__setattr__(self, "category_codes", codes)

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def skus(self) -> np.ndarray:
        return self.ids.ids

    @property
    def prices(self) -> np.ndarray:
        out: np.ndarray = self.frame["price"].to_numpy(np.float64)
        return out

    @property
    def in_stock(self) -> np.ndarray:
        out: np.ndarray = self.frame["in_stock"].to_numpy(bool)
        return out

    @property
    def has_categories(self) -> bool:
        return len(self.categories) > 0

    @cached_property
    def _search(self) -> ProductSearch:
        """The relevance index, built on the first search."""
        f = self.frame
        return ProductSearch(
            f["sku"].astype(str).tolist(), f["title"].astype(str).tolist(), f["category"].tolist()
        )

    def search(self, query: str) -> np.ndarray:
        """Rows matching every word of ``query`` (word prefixes, misspellings corrected to the
        catalog's own words), most relevant first: the product look-up of the API and the
        merchandiser page (see ``recsys.data.product_search``)."""
        return self._search.search(query)

    def text_matches(self, query: str) -> np.ndarray:
        """(n,) bool: the items ``search(query)`` finds."""
        mask = np.zeros(len(self), dtype=bool)
        mask[self.search(query)] = True
        return mask

    def category_tag_share(self) -> np.ndarray:
        """(n_categories,) float32: share of each category's items that carry a style tag.
        Catalogs tag the categories that make a look (furniture, lighting, decor) and not
        tiles or gloves, so this tells the look-defining categories apart."""
        tagged = np.fromiter((len(t) > 0 for t in self.frame["styles"]), bool, len(self))
        known = self.category_codes >= 0
        n_cat = len(self.categories)
        total = np.bincount(self.category_codes[known], minlength=n_cat).astype(np.float32)
        hits = np.bincount(self.category_codes[known], weights=tagged[known], minlength=n_cat)
        return (hits / np.maximum(total, 1.0)).astype(np.float32)

    def style_labels(self) -> np.ndarray:
        """Known tags as a (n_items, n_styles) 0/1 float32 matrix (all-zero row = untagged)."""
        out = np.zeros((len(self), len(self.taxonomy)), dtype=np.float32)
        col = {s: j for j, s in enumerate(self.taxonomy.slugs)}
        for i, tags in enumerate(self.frame["styles"]):
            for t in tags:
                out[i, col[t]] = 1.0
        return out

    def attributes_of(self, row: int) -> dict[str, Any]:
        """All attributes of one item: the standard columns plus the open-ended ones."""
        rec = self.frame.iloc[row]
        attrs = {c: rec[c] for c in ATTRIBUTE_COLUMNS if rec[c] is not None}
        attrs.update(rec["attributes"])
        return attrs

    def to_frame(self) -> pd.DataFrame:
        """The catalog in its file shape (attributes as JSON text, styles as a list)."""
        out = self.frame.copy()
        out["attributes"] = [json.dumps(a, sort_keys=True) for a in out["attributes"]]
        out["styles"] = [list(s) for s in out["styles"]]
        return out

    def save(self, path: str | Path) -> None:
        """Write as Parquet (or CSV by suffix, styles joined with '|')."""
        path = Path(path)
        frame = self.to_frame()
        if path.suffix.lower() == ".csv":
            frame["styles"] = [STYLE_SEPARATOR.join(s) for s in frame["styles"]]
            frame.to_csv(path, index=False)
        else:
            frame.to_parquet(path, index=False)


def _parse_styles(value: Any, row: int, source: str, taxonomy: StyleTaxonomy) -> tuple[str, ...]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ()
    if isinstance(value, str):
        items = [v.strip() for v in value.split(STYLE_SEPARATOR)] if value.strip() else []
    elif isinstance(value, list | tuple | np.ndarray):
        items = [str(v).strip() for v in value]
    else:
        raise DataContractError(
            source,
            f"styles must be a list or '|'-separated text, got {value!r}",
            row=row,
            column="styles",
        )
    for s in items:
        if s not in taxonomy:
            raise DataContractError(
                source,
                f"unknown style {s!r}; known styles: {', '.join(taxonomy.slugs)}",
                row=row,
                column="styles",
            )
    return tuple(dict.fromkeys(items))


def _parse_attributes(value: Any, row: int, source: str) -> dict[str, Any]:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value == "":
        return {}
    if isinstance(value, dict):
        return dict(value)
    try:
        parsed = json.loads(value)
    except (TypeError, json.JSONDecodeError):
        parsed = None
    if not isinstance(parsed, dict):
        raise DataContractError(
            source,
            f"attributes must be a JSON object of key/values, got {value!r}",
            row=row,
            column="attributes",
        )
    return parsed


def _parse_bool(series: pd.Series, source: str) -> pd.Series:
    if series.dtype == bool:
        return series
    text = series.astype(str).str.strip().str.lower()
    bad = ~text.isin(_TRUE | _FALSE)
    if bad.any():
        row = first_bad_row(bad)
        raise DataContractError(
            source, f"expected true/false, got {series.iloc[row - 1]!r}", row=row, column="in_stock"
        )
    return text.isin(_TRUE)


def validate_catalog(
    raw: pd.DataFrame, source: str = "<catalog>", taxonomy: StyleTaxonomy | None = None
) -> Catalog:
    """Check a raw catalog table against the contract and return a ``Catalog``."""
    taxonomy = taxonomy or load_taxonomy()
    require_columns(raw, REQUIRED_COLUMNS, source)
    frame = pd.DataFrame(index=range(len(raw)))
    sku = raw["sku"].astype("string").str.strip()
    if sku.isna().any() or (sku == "").any():
        row = first_bad_row(sku.isna() | (sku == ""))
        raise DataContractError(source, "empty sku", row=row, column="sku")
    dup = sku.duplicated()
    if dup.any():
        row = first_bad_row(dup)
        raise DataContractError(
            source, f"duplicate sku {sku.iloc[row - 1]!r}", row=row, column="sku"
        )
    frame["sku"] = sku.astype(object).to_numpy()
    title = raw["title"].astype("string").fillna("").str.strip()
    frame["title"] = title.astype(object).to_numpy()
    cat = raw["category"].astype("string").str.strip()
    frame["category"] = [None if (c is pd.NA or c == "") else str(c) for c in cat]
    for i, c in enumerate(frame["category"], start=1):
        if c is not None and not SLUG_RE.match(c):
            raise DataContractError(
                source,
                f"category {c!r} is not a slug (lower-case words joined by '-')",
                row=i,
                column="category",
            )
    price = to_numeric(raw, "price", source)
    if price.isna().any():
        raise DataContractError(
            source, "missing price", row=first_bad_row(price.isna()), column="price"
        )
    if (price < 0).any():
        row = first_bad_row(price < 0)
        raise DataContractError(
            source, f"negative price {price.iloc[row - 1]}", row=row, column="price"
        )
    frame["price"] = price.astype(float).to_numpy()
    frame["in_stock"] = _parse_bool(raw["in_stock"], source).to_numpy(bool)
    for col in ATTRIBUTE_COLUMNS:
        if col in raw.columns:
            vals = raw[col].astype("string").str.strip().str.lower()
            frame[col] = [None if (v is pd.NA or v == "") else str(v) for v in vals]
        else:
            frame[col] = None
    attrs = raw["attributes"] if "attributes" in raw.columns else [None] * len(raw)
    frame["attributes"] = [_parse_attributes(v, i, source) for i, v in enumerate(attrs, start=1)]
    frame["styles"] = [
        _parse_styles(v, i, source, taxonomy) for i, v in enumerate(raw["styles"], start=1)
    ]
    return Catalog(frame, taxonomy)


def load_catalog(path: str | Path, taxonomy: StyleTaxonomy | None = None) -> Catalog:
    """Load and validate a catalog from CSV or Parquet."""
    return validate_catalog(read_table(path), str(path), taxonomy)
