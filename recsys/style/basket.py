"""The style of a basket: a distribution over styles, the top style or "no clear style",
the evidence (which item pushed toward which style) and a sentence a person can read.

Each informative item contributes its log-likelihood ratio log(p(style | item) / prior); the
basket's posterior is prior * exp(scale * sum of contributions) (naive Bayes over items, with
quantities counting logarithmically). Neutral items have all-zero rows and contribute nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from recsys.data.catalog import Catalog
from recsys.data.taxonomy import StyleTaxonomy
from recsys.recommendation import StyleEvidence, StyleReading
from recsys.style.evidence import DEFAULT_SMOOTHING, item_log_ratios, posterior
from recsys.style.item_model import ItemStyleModel

MAX_EVIDENCE_PER_STYLE = 5
_SIZE_RE = re.compile(r"\S*\d\S*(?:\s+(?:m|cm|mm|l|ml|kg|g)\b)?")


def short_title(title: str) -> str:
    """A title fit for a sentence: lower case, sizes and codes dropped ("60x120", "25x1.06 m")."""
    text = _SIZE_RE.sub(" ", title.lower())
    return re.sub(r"\s+", " ", re.sub(r"\s+,", ",", text)).strip(" ,")


class BasketStyleInferer:
    """Reads basket styles from item style vectors.

    ``item_styles`` (n_items, n_styles) rows are distributions, all-zero for neutral items;
    ``informativeness`` (n_items,) in [0, 1]; ``titles``/``skus`` (n_items,) for evidence;
    ``prior`` (n_styles,) market share of styles (default: mean of the informative rows);
    ``min_confidence``: below it the reading is "no clear style"; ``second_min``: a second style
    at least this probable makes a mixed basket; ``smoothing`` mixes each item with the prior so
    one item can never rule a style out; ``evidence_scale`` tempers the sum over items (items in
    one basket are not independent, so 1.0 is overconfident on large baskets); an item line of
    quantity q weighs ``1 + quantity_weight * log(q)`` (30 tiles are one style decision, not 30);
    ``item_weights`` (n_items,) scale each item's evidence (e.g. tags count more than inferred
    styles; default 1).
    """

    def __init__(
        self,
        item_styles: np.ndarray,
        informativeness: np.ndarray,
        titles: Sequence[str],
        skus: Sequence[str],
        taxonomy: StyleTaxonomy,
        min_confidence: float = 0.45,
        prior: np.ndarray | None = None,
        second_min: float = 0.25,
        smoothing: float = DEFAULT_SMOOTHING,
        evidence_scale: float = 1.0,
        quantity_weight: float = 0.25,
        item_weights: np.ndarray | None = None,
    ) -> None:
        item_styles = np.asarray(item_styles, dtype=np.float64)
        n, k = item_styles.shape
        if k != len(taxonomy):
            raise ValueError(
                f"item_styles has {k} columns but the taxonomy has {len(taxonomy)} styles"
            )
        if len(informativeness) != n or len(titles) != n or len(skus) != n:
            raise ValueError(
                "item_styles, informativeness, titles and skus must have one entry per item"
            )
        active = item_styles.sum(axis=1) > 0
        if prior is None:
            prior = item_styles[active].mean(axis=0) if active.any() else np.full(k, 1.0 / k)
        prior = np.asarray(prior, dtype=np.float64)
        prior = (prior + 1e-6) / (prior + 1e-6).sum()
        self.log_ratio_ = item_log_ratios(item_styles, prior, smoothing)  # (n_items, n_styles)
        if item_weights is not None:
            if len(item_weights) != n:
                raise ValueError("item_weights must have one entry per item")
            self.log_ratio_ *= np.asarray(item_weights, dtype=np.float32)[:, None]
        self.active_ = active
        self.log_prior_ = np.log(prior)
        self.informativeness = np.asarray(informativeness, dtype=np.float32)
        self.titles = [str(t) for t in titles]
        self._short_titles: dict[str, str] = {}
        self.skus = [str(s) for s in skus]
        self.taxonomy = taxonomy
        self.slugs = taxonomy.slugs
        self.min_confidence = min_confidence
        self.second_min = second_min
        self.evidence_scale = evidence_scale
        self.quantity_weight = quantity_weight

    @classmethod
    def from_model(
        cls, model: ItemStyleModel, catalog: Catalog, **kwargs: float
    ) -> BasketStyleInferer:
        """The reader for a fitted model, with the evidence weights it calibrated on its
        training baskets."""
        model._check_catalog(catalog)
        return cls(
            model.item_styles_,
            model.informativeness_,
            catalog.frame["title"].tolist(),
            catalog.ids.to_list(),
            model.taxonomy_,
            prior=model.prior_,
            item_weights=model.item_evidence_weights(),
            **kwargs,
        )

    # ------------------------------------------------------------------ numbers
    def _contributions(
        self, rows: np.ndarray, quantities: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= len(self.log_ratio_)):
            raise IndexError(f"basket rows must be in 0..{len(self.log_ratio_) - 1}")
        if quantities is None:
            weight = np.ones(len(rows))
        else:
            q = np.asarray(quantities, dtype=np.float64)
            if q.shape != rows.shape or (q <= 0).any():
                raise ValueError("quantities must be positive, one per basket row")
            weight = 1.0 + self.quantity_weight * np.log(q)
        return rows, weight[:, None] * self.log_ratio_[rows]  # (m, n_styles)

    def _posterior(self, contrib: np.ndarray) -> np.ndarray:
        return posterior(self.log_prior_, contrib.sum(axis=0), self.evidence_scale)

    def infer_vector(self, rows: np.ndarray, quantities: np.ndarray | None = None) -> np.ndarray:
        """Basket style distribution (n_styles,) float64; all zeros when no basket item carries
        style (so a "no signal" basket never looks like the market average)."""
        rows, contrib = self._contributions(rows, quantities)
        if not self.active_[rows].any():
            return np.zeros(len(self.slugs))
        return self._posterior(contrib)

    # ------------------------------------------------------------------ reading
    def infer(self, rows: np.ndarray, quantities: np.ndarray | None = None) -> StyleReading:
        """The full reading for one basket of catalog ``rows`` (m,) with ``quantities`` (m,)."""
        rows, contrib = self._contributions(rows, quantities)
        if not self.active_[rows].any():
            return StyleReading(
                top=None,
                confidence=0.0,
                distribution={s: 0.0 for s in self.slugs},
                explanation="no clear style: nothing in the basket carries a style",
            )
        post = self._posterior(contrib)
        order = np.argsort(-post)
        first, runner = int(order[0]), int(order[1]) if len(order) > 1 else -1
        confidence = float(post[first])
        distribution = {s: float(v) for s, v in zip(self.slugs, post, strict=True)}
        if confidence < self.min_confidence:
            shown = ", ".join(f"{self.slugs[j]} {post[j]:.2f}" for j in order[:2])
            return StyleReading(
                top=None,
                confidence=confidence,
                distribution=distribution,
                evidence=self._evidence(rows, contrib, [first]),
                explanation=f"no clear style ({shown})",
            )
        styles = [first]
        if runner >= 0 and post[runner] >= self.second_min:
            styles.append(runner)
        evidence = self._evidence(rows, contrib, styles)
        return StyleReading(
            top=self.slugs[first],
            confidence=confidence,
            distribution=distribution,
            evidence=evidence,
            second=self.slugs[runner] if len(styles) > 1 else None,
            explanation="; ".join(self._sentence(evidence, j, post[j]) for j in styles),
        )

    def _evidence(
        self, rows: np.ndarray, contrib: np.ndarray, styles: list[int]
    ) -> tuple[StyleEvidence, ...]:
        """Items that pushed toward each style; ``weight`` is the item's share of that style's
        positive evidence."""
        out: list[StyleEvidence] = []
        for j in styles:
            push = np.maximum(contrib[:, j], 0.0)
            total = push.sum()
            if total <= 0:
                continue
            for i in np.argsort(-push, kind="stable")[:MAX_EVIDENCE_PER_STYLE]:
                share = push[i] / total
                if share < 0.05:
                    break
                r = int(rows[i])
                out.append(
                    StyleEvidence(
                        self.skus[r], self.titles[r], self.slugs[j], round(float(share), 4)
                    )
                )
        return tuple(out)

    def _short(self, title: str) -> str:
        short = self._short_titles.get(title)
        if short is None:
            short = self._short_titles[title] = short_title(title)
        return short

    def _sentence(self, evidence: tuple[StyleEvidence, ...], style: int, prob: float) -> str:
        slug = self.slugs[style]
        titles = list(dict.fromkeys(self._short(e.title) for e in evidence if e.style == slug))[:3]
        name = slug.replace("-", " ")
        if not titles:
            return f"the basket leans {name} ({prob:.2f})"
        said = titles[0] if len(titles) == 1 else ", ".join(titles[:-1]) + " and " + titles[-1]
        verb = "suggests" if len(titles) == 1 else "suggest"
        return f"{said} {verb} {name} ({prob:.2f})"
