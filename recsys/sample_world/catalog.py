"""Synthetic home catalog: SKUs whose attributes follow their style, titles built from them.

Each styled SKU is drawn from one *generation style*; its colour, material, finish, pattern
and styled extras (a table top, sofa legs) are drawn from that style's profile mixed with
uniform noise. Its *true* styles are the generation style plus any other style that explains
the drawn attributes at least as well (natural overlap: a matte white oak shelf is both
Scandinavian and minimalist). Tags are a noisy, partial copy of the true styles.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from recsys.data.catalog import Catalog
from recsys.data.taxonomy import StyleTaxonomy, load_taxonomy
from recsys.sample_world.vocabulary import (
    ATTRIBUTE_NOISE,
    CATEGORIES,
    FLOOR_WEIGHT,
    STYLE_POPULARITY,
    STYLE_PROFILES,
    STYLES,
    TAG_RATE,
    WRONG_TAG_RATE,
    CategorySpec,
)

OUT_OF_STOCK_RATE = 0.065
ZIPF_EXPONENT = 1.0
PRICE_SIGMA = 0.45
STYLE_PRICE_FACTOR = {
    "loft": 1.05,
    "scandinavian": 0.95,
    "classic": 1.25,
    "modern": 1.0,
    "provence": 1.0,
    "minimalism": 1.05,
    "boho": 0.9,
    "art-deco": 1.3,
}
_ATTRS = ("color", "material", "finish", "pattern")
_PAINTABLE_PATTERNS = {"plain", "concrete look", "brick look"}


@dataclass(frozen=True)
class CatalogDraw:
    """A generated catalog plus what only the generator knows.

    family: (n,) str; generation_style: (n,) int (-1 for style-neutral tools);
    true_styles: (n, n_styles) bool; popularity: (n,) float, sums to 1 within each category.
    """

    catalog: Catalog
    family: np.ndarray
    generation_style: np.ndarray
    true_styles: np.ndarray
    popularity: np.ndarray

    def item_truth(self) -> pd.DataFrame:
        """One row per SKU: sku, family, true_styles (list of slugs), tagged (bool)."""
        tagged = np.array([len(s) > 0 for s in self.catalog.frame["styles"]])
        return pd.DataFrame(
            {
                "sku": self.catalog.skus,
                "family": self.family,
                "true_styles": [[STYLES[j] for j in np.flatnonzero(r)] for r in self.true_styles],
                "tagged": tagged,
            }
        )


def _style_probs(
    tokens: tuple[str, ...], attr: str, noise: float, spec: CategorySpec
) -> np.ndarray:
    """P(token | style) for every style over ``tokens``: shape (n_styles, n_tokens)."""
    out = np.empty((len(STYLES), len(tokens)))
    for s, style in enumerate(STYLES):
        prefs = spec.profiles.get(style, {}).get(attr) or STYLE_PROFILES[style].get(attr, {})
        w = np.array([prefs.get(t, FLOOR_WEIGHT) for t in tokens], dtype=float)
        out[s] = (1 - noise) * w / w.sum() + noise / len(tokens)
    return out


def _category_counts(n_skus: int) -> np.ndarray:
    """SKUs per category (largest remainder, at least 3 each), summing to ``n_skus``."""
    n_cat = len(CATEGORIES)
    if n_skus < 3 * n_cat:
        raise ValueError(f"n_skus must be at least {3 * n_cat} (3 per category), got {n_skus}")
    w = np.array([c.weight for c in CATEGORIES])
    share = w / w.sum() * (n_skus - 3 * n_cat)
    counts = np.floor(share).astype(int)
    rest = n_skus - 3 * n_cat - counts.sum()
    counts[np.argsort(-(share - counts), kind="stable")[:rest]] += 1
    out: np.ndarray = counts + 3
    return out


def _title(spec: CategorySpec, values: dict[str, object]) -> str:
    fmt: dict[str, object] = dict(values)
    for key in ("color", "material", "pattern", "shape"):
        text = "" if values.get(key) in (None, "plain") else str(values.get(key))
        fmt[key] = text
        fmt[key.capitalize()] = text[:1].upper() + text[1:]
    fmt["Paintable"] = "paintable " if values.get("paintable") else ""
    fmt["noun"] = spec.noun
    title = spec.title.format(**fmt)
    title = re.sub(r"\s+", " ", title)
    title = re.sub(r"\s+,", ",", title).strip(" ,")
    title = re.sub(r",\s*,", ",", title)
    return title[:1].upper() + title[1:]


def draw_catalog(
    seed: int = 7, n_skus: int = 4000, taxonomy: StyleTaxonomy | None = None
) -> CatalogDraw:
    """Generate a catalog of ``n_skus`` SKUs over every category of the vocabulary.

    Deterministic from ``seed`` and independent of how many orders a world later draws.
    """
    taxonomy = taxonomy or load_taxonomy()
    if tuple(taxonomy.slugs) != STYLES:
        raise ValueError(f"the sample world needs the styles {STYLES}, got {taxonomy.slugs}")
    rng = np.random.default_rng([seed, 1])
    counts = _category_counts(n_skus)
    n_styles = len(STYLES)
    global_mix = np.array([STYLE_POPULARITY[s] for s in STYLES])

    cols: dict[str, list[Any]] = {
        k: [] for k in ("category", "color", "material", "finish", "pattern", "attributes", "title")
    }
    family_parts, gen_parts, loglik_parts, pop_parts, price_parts = [], [], [], [], []
    for spec, n in zip(CATEGORIES, counts, strict=True):
        styled = spec.family != "tools"
        if styled:
            mix = np.array([spec.styles.get(s, 0.0) for s in STYLES]) if spec.styles else global_mix
            gen = rng.choice(n_styles, size=n, p=mix / mix.sum())
        else:
            gen = np.full(n, -1)
        loglik = np.zeros((n, n_styles))
        values: dict[str, np.ndarray] = {}
        draws = [(a, getattr(spec, a + ("es" if a == "finish" else "s")), a) for a in _ATTRS]
        draws += [(k, v, "material") for k, v in spec.styled_extras.items()]
        for name, tokens, profile in draws:
            if not tokens:
                values[name] = np.full(n, None, dtype=object)
                continue
            tok = np.asarray(tokens, dtype=object)
            if not styled:
                values[name] = tok[rng.integers(0, len(tok), n)]
                continue
            probs = _style_probs(tokens, profile, ATTRIBUTE_NOISE, spec)
            idx = np.empty(n, dtype=np.int64)
            for s in range(n_styles):
                mask = gen == s
                idx[mask] = rng.choice(len(tok), size=int(mask.sum()), p=probs[s])
            values[name] = tok[idx]
            loglik += np.log(probs[:, idx].T)
        extras = {
            k: np.asarray(v, dtype=object)[rng.integers(0, len(v), n)]
            for k, v in spec.extras.items()
        }
        if spec.slug == "wallpaper":
            plainish = np.isin(values["pattern"], list(_PAINTABLE_PATTERNS))
            nonwoven = values["material"] == "non-woven"
            silk = values["material"] == "silk"
            p = np.where(plainish & nonwoven, 0.92, np.where(plainish & ~silk, 0.35, 0.03))
            paintable = rng.random(n) < p
            whiten = paintable & (rng.random(n) < 0.6)
            values["color"] = np.where(whiten, "white", values["color"]).astype(object)
            extras["paintable"] = paintable
        for i in range(n):
            row = {a: values[a][i] for a in _ATTRS}
            extra = {k: (v[i].item() if hasattr(v[i], "item") else v[i]) for k, v in extras.items()}
            extra.update({k: values[k][i] for k in spec.styled_extras})
            cols["title"].append(_title(spec, {**row, **extra}))
            for a in _ATTRS:
                cols[a].append(row[a])
            cols["attributes"].append(extra)
        cols["category"].extend([spec.slug] * n)
        family_parts.append(np.full(n, spec.family, dtype=object))
        gen_parts.append(gen)
        loglik_parts.append(loglik if styled else np.full((n, n_styles), -np.inf))
        # Zipf within the category, ranked per style segment: every style has its bestsellers
        pop = np.empty(n)
        for g in np.unique(gen):
            seg = np.flatnonzero(gen == g)
            pop[seg] = (rng.permutation(len(seg)) + 1.0) ** -ZIPF_EXPONENT
            pop[seg] *= (gen == g).mean() / pop[seg].sum()
        pop_parts.append(pop / pop.sum())
        factor = np.array([STYLE_PRICE_FACTOR[STYLES[g]] if g >= 0 else 1.0 for g in gen])
        price_parts.append(spec.price * factor * rng.lognormal(0.0, PRICE_SIGMA, n))

    family = np.concatenate(family_parts)
    gen = np.concatenate(gen_parts)
    loglik = np.concatenate(loglik_parts)
    n_total = len(family)
    true = np.zeros((n_total, n_styles), dtype=bool)
    styled_rows = np.flatnonzero(gen >= 0)
    true[styled_rows, gen[styled_rows]] = True
    own = loglik[styled_rows, gen[styled_rows]]
    rival_ll = loglik[styled_rows].copy()
    rival_ll[np.arange(len(styled_rows)), gen[styled_rows]] = -np.inf
    rival = rival_ll.argmax(axis=1)
    overlap = rival_ll[np.arange(len(styled_rows)), rival] >= own
    true[styled_rows[overlap], rival[overlap]] = True

    tag_rate = np.array([TAG_RATE[f] for f in family])
    tagged = rng.random(n_total) < tag_rate
    wrong = tagged & (rng.random(n_total) < WRONG_TAG_RATE)
    wrong_style = (np.maximum(gen, 0) + rng.integers(1, n_styles, n_total)) % n_styles
    styles_col: list[tuple[str, ...]] = []
    for i in range(n_total):
        if not tagged[i]:
            styles_col.append(())
        elif wrong[i]:
            styles_col.append((STYLES[wrong_style[i]],))
        else:
            styles_col.append(tuple(STYLES[j] for j in np.flatnonzero(true[i])))

    price = np.round(np.concatenate(price_parts), 2)
    width = max(6, len(str(n_total)))
    frame = pd.DataFrame(
        {
            "sku": [f"SKU-{i + 1:0{width}d}" for i in range(n_total)],
            "title": cols["title"],
            "category": cols["category"],
            "price": price.astype(float),
            "in_stock": rng.random(n_total) >= OUT_OF_STOCK_RATE,
            "color": cols["color"],
            "material": cols["material"],
            "finish": cols["finish"],
            "pattern": cols["pattern"],
            "attributes": cols["attributes"],
            "styles": styles_col,
        }
    )
    return CatalogDraw(
        catalog=Catalog(frame, taxonomy),
        family=family,
        generation_style=gen,
        true_styles=true,
        popularity=np.concatenate(pop_parts),
    )


def generate_catalog(seed: int = 7, n_skus: int = 4000) -> Catalog:
    """A synthetic catalog alone (e.g. 50k or 500k SKUs for latency benchmarks)."""
    return draw_catalog(seed, n_skus).catalog


def family_of_category() -> dict[str, str]:
    """Category slug -> family (finishing, furniture, lighting, textiles, decor, tools)."""
    return {c.slug: c.family for c in CATEGORIES}
