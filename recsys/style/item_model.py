"""A calibrated style distribution for every product: tags where known, inferred where not.

Three signals, pooled with weights fitted on held-out predictions for tagged products:
1. the product's own tags (kept: a tagged product's top style is its tag);
2. content: multinomial logistic regression on category, attribute values and title words,
   trained on tagged products;
3. behaviour: the styles of products bought together with it (label propagation over the
   co-purchase graph of the training window), so untagged tiles bought with loft furniture
   lean loft.
Products whose pooled distribution barely differs from the market prior (gloves, tape, waste
bags: bought with every style) are style-neutral: their row in ``item_styles_`` is all zero.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.optimize import minimize

from recsys.data.catalog import Catalog
from recsys.data.taxonomy import StyleTaxonomy
from recsys.style.content_features import ContentVocabulary, catalog_features
from recsys.style.evidence import item_log_ratios
from recsys.style.orders import co_purchase_graph
from recsys.style.softmax_regression import ExpertPooling, SoftmaxRegression, log_softmax

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
ARRAYS_FILE = "style_model.npz"
META_FILE = "style_model.json"
_EPS = 1e-6


def keyword_labels(catalog: Catalog, keyword_seeds: Mapping[str, Sequence[str]]) -> np.ndarray:
    """(n_items, n_styles) 0/1 float32: style k where the title contains one of its keywords
    (whole words, case-insensitive). Unknown styles are rejected."""
    taxonomy = catalog.taxonomy
    out = np.zeros((len(catalog), len(taxonomy)), dtype=np.float32)
    titles = catalog.frame["title"].str.lower()
    for slug, words in keyword_seeds.items():
        if slug not in taxonomy:
            raise ValueError(
                f"keyword_seeds: unknown style {slug!r}; known styles: {', '.join(taxonomy.slugs)}"
            )
        if not words:
            continue
        pattern = r"\b(?:" + "|".join(re.escape(w.lower()) for w in words) + r")\b"
        out[titles.str.contains(pattern, regex=True).to_numpy(bool), taxonomy.index(slug)] = 1.0
    return out


def informativeness(p: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """How far each row of ``p`` (n, k) is from ``prior`` (k,), in [0, 1].

    KL(p || prior) divided by the KL of a certain answer for the most common style, clipped:
    0 = the item says nothing about style (bought by every kind of shopper), 1 = decisive."""
    kl = (p * (np.log(p + _EPS) - np.log(prior + _EPS))).sum(axis=1)
    out: np.ndarray = np.clip(kl / np.log(1.0 / prior.max()), 0.0, 1.0)
    return out


class ItemStyleModel:
    """Learns ``item_styles_`` (n_items, n_styles) float32, ``informativeness_`` (n_items,)
    float32 and ``neutral_`` (n_items,) bool for one catalog.

    Hyperparameters: ``l2`` of the content model, ``min_feature_count`` (a content feature must
    occur on this many products), ``n_folds`` for held-out content predictions, ``propagation_rounds``
    over the co-purchase graph, ``prior_strength`` (pseudo-count of co-purchases pulling a
    rarely bought product toward the prior), ``tag_trust`` (weight of a product's own tag against
    the model's opinion), ``neutral_threshold`` (informativeness below it = style-neutral),
    ``keyword_seeds`` (style slug -> title keywords used as extra tags where a product has none),
    ``calibration_share``: the last share of training orders (rows in time order) on which the
    basket reader's evidence scale is calibrated by a model fitted on the earlier orders
    (``basket_weights_``: evidence weight of tagged and of inferred items; 0 = no calibration,
    weights 1), ``use_behaviour`` (False = content-only item styles; orders then serve only the
    prior and the calibration: the baseline without behaviour), ``seed`` for the fold split.
    """

    def __init__(
        self,
        l2: float = 1.0,
        min_feature_count: int = 2,
        n_folds: int = 5,
        propagation_rounds: int = 2,
        prior_strength: float = 2.0,
        tag_trust: float = 0.9,
        neutral_threshold: float = 0.15,
        keyword_seeds: Mapping[str, Sequence[str]] | None = None,
        calibration_share: float = 0.2,
        use_behaviour: bool = True,
        seed: int = 0,
    ) -> None:
        self.l2 = l2
        self.min_feature_count = min_feature_count
        self.n_folds = n_folds
        self.propagation_rounds = propagation_rounds
        self.prior_strength = prior_strength
        self.tag_trust = tag_trust
        self.neutral_threshold = neutral_threshold
        self.keyword_seeds = keyword_seeds
        self.calibration_share = calibration_share
        self.use_behaviour = use_behaviour
        self.seed = seed

    # ------------------------------------------------------------------ fitting
    def fit(self, catalog: Catalog, orders: sp.csr_matrix | None = None) -> ItemStyleModel:
        """Learn from the catalog's tags and content and from ``orders`` (n_orders, n_items),
        the purchases of the training window (None = content only)."""
        n, taxonomy = len(catalog), catalog.taxonomy
        k = len(taxonomy)
        if not 0.0 <= self.tag_trust <= 1.0:
            raise ValueError(f"tag_trust must be in [0, 1], got {self.tag_trust}")
        if orders is not None and orders.shape[1] != n:
            raise ValueError(
                f"orders has {orders.shape[1]} item columns but the catalog has {n} items"
            )
        labels = catalog.style_labels()
        seeded = np.zeros(n, dtype=bool)
        if self.keyword_seeds:
            kw = keyword_labels(catalog, self.keyword_seeds)
            seeded = (labels.sum(axis=1) == 0) & (kw.sum(axis=1) > 0)
            labels[seeded] = kw[seeded]
        tagged = labels.sum(axis=1) > 0
        y = np.divide(
            labels,
            labels.sum(axis=1, keepdims=True),
            where=tagged[:, None],
            out=np.zeros_like(labels),
        ).astype(np.float64)

        self.taxonomy_ = taxonomy
        self.skus_ = np.asarray(catalog.ids.to_list(), dtype=str)
        self.tagged_ = tagged
        self.seeded_ = seeded
        self.labels_ = labels  # (n, k) 0/1 float32: own tags, or keyword seeds where none
        self.expert_names_ = ["content"]
        self.expert_weights_ = np.zeros(0)
        self.basket_weights_ = np.ones(2)
        self.basket_item_agreement_ = 1.0
        if not tagged.any():
            return self._fit_nothing(
                n,
                k,
                "the catalog has no style tags"
                + ("" if self.keyword_seeds else " and no keyword seeds"),
            )

        has_orders = orders is not None and orders.nnz > 0
        graph = co_purchase_graph(orders) if has_orders and self.use_behaviour else None
        self.prior_ = self._prior(y, tagged, orders)
        log_prior = np.log(self.prior_)

        content_full, content_heldout = self._content_ratios(catalog, y, tagged)
        experts_heldout = [content_heldout]
        experts_full = [content_full]
        if graph is not None:
            self.expert_names_.append("behaviour")
            beh = self._behaviour_ratios(graph, y)  # own label excluded (zero diagonal)
            experts_heldout.append(beh)
            experts_full.append(beh)
        ratios = np.stack(experts_heldout, axis=1)  # (n, e, k)
        pooling = ExpertPooling().fit(ratios[tagged], y[tagged], log_prior)
        self.expert_weights_ = pooling.weights_
        heldout = pooling.predict_proba(ratios, log_prior)

        p = pooling.predict_proba(np.stack(experts_full, axis=1), log_prior)
        for _ in range(1, self.propagation_rounds if graph is not None else 1):
            inf = informativeness(p, self.prior_)
            seeds = np.where(tagged[:, None], y, p * inf[:, None])
            experts_full[1] = self._behaviour_ratios(graph, seeds)
            p = pooling.predict_proba(np.stack(experts_full, axis=1), log_prior)

        final = np.where(tagged[:, None], self.tag_trust * y + (1 - self.tag_trust) * heldout, p)
        inf = informativeness(final, self.prior_)
        neutral = inf < self.neutral_threshold
        self.item_styles_ = np.where(neutral[:, None], 0.0, final).astype(np.float32)
        self.informativeness_ = np.where(neutral, 0.0, inf).astype(np.float32)
        self.neutral_ = neutral
        self.heldout_styles_ = heldout.astype(np.float32)
        self.learned_ = True
        if has_orders and 0 < self.calibration_share < 1:
            self.basket_weights_ = self._calibrate_basket_scale(catalog, orders, y, tagged)
        self.summary_ = {
            "n_items": int(n),
            "n_tagged": int(tagged.sum() - seeded.sum()),
            "n_keyword_seeded": int(seeded.sum()),
            "n_inferred": int((~tagged & ~neutral).sum()),
            "n_neutral": int(neutral.sum()),
            "behaviour": graph is not None,
            "basket_weights": [float(w) for w in self.basket_weights_],
            "basket_item_agreement": float(self.basket_item_agreement_),
            "expert_weights": dict(
                zip(self.expert_names_, map(float, self.expert_weights_), strict=True)
            ),
            "message": "learned from tags, content"
            + (" and co-purchase" if graph is not None else ""),
        }
        log.info("style model: %s", self.summary_)
        return self

    def _fit_nothing(self, n: int, k: int, why: str) -> ItemStyleModel:
        message = f"learned nothing: {why}; every item is marked no-style"
        log.warning("style model %s", message)
        self.prior_ = np.full(k, 1.0 / k)
        self.item_styles_ = np.zeros((n, k), dtype=np.float32)
        self.informativeness_ = np.zeros(n, dtype=np.float32)
        self.neutral_ = np.ones(n, dtype=bool)
        self.heldout_styles_ = np.zeros((n, k), dtype=np.float32)
        self.learned_ = False
        self.summary_ = {
            "n_items": int(n),
            "n_tagged": 0,
            "n_keyword_seeded": 0,
            "n_inferred": 0,
            "n_neutral": int(n),
            "behaviour": False,
            "expert_weights": {},
            "message": message,
        }
        return self

    def _calibrate_basket_scale(
        self,
        catalog: Catalog,
        orders: sp.csr_matrix,
        y: np.ndarray,
        tagged: np.ndarray,
        max_baskets: int = 5000,
    ) -> np.ndarray:
        """Evidence weights (tagged items, inferred items) that best predict a tagged item's
        style from the rest of its basket, on the last ``calibration_share`` of orders, with
        item vectors from a model that never saw those orders. Items of one basket are not
        independent, and inferred styles are weaker evidence than tags: this measures both."""
        cut = int(round(orders.shape[0] * (1 - self.calibration_share)))
        early = orders[:cut]
        if early.nnz == 0:
            return np.ones(2)
        params = {**self.hyperparameters(), "calibration_share": 0.0}
        inner = ItemStyleModel(**params).fit(catalog, early)
        ratios = item_log_ratios(inner.item_styles_, inner.prior_)
        rng = np.random.default_rng(self.seed)
        late = orders[cut:].tocsr()
        evidence, targets = [], []
        for r in rng.permutation(late.shape[0]):
            items = late.indices[late.indptr[r] : late.indptr[r + 1]]
            candidates = items[tagged[items]]
            if len(candidates) == 0 or len(items) < 2:
                continue
            target = rng.choice(candidates)
            context = items[items != target]
            if not inner.item_styles_[context].any():
                continue
            is_tag = tagged[context]
            evidence.append(
                (ratios[context[is_tag]].sum(axis=0), ratios[context[~is_tag]].sum(axis=0))
            )
            targets.append(y[target])
            if len(targets) >= max_baskets:
                break
        if len(targets) < 20:
            return np.ones(2)
        ev, tg = np.asarray(evidence, np.float64), np.asarray(targets)  # (b, 2, k), (b, k)
        prior = inner.prior_
        log_prior = np.log(prior)

        # The basket's style is latent: a held-out item shares it with probability rho and is
        # otherwise any style (prior). Fitting rho too keeps the weights calibrated for the
        # basket's style, not for the noisier style of one more item.
        def loss(theta: np.ndarray) -> float:
            style = np.exp(log_softmax(log_prior + np.einsum("bek,e->bk", ev, theta[:2])))
            item = theta[2] * style + (1 - theta[2]) * prior
            return float(-(tg * np.log(item + _EPS)).sum())

        res = minimize(
            loss,
            np.array([1.0, 1.0, 0.8]),
            method="L-BFGS-B",
            bounds=[(0.0, 3.0), (0.0, 3.0), (0.05, 1.0)],
        )
        self.basket_item_agreement_ = float(res.x[2])
        log.info(
            "basket evidence weights tagged %.3f, inferred %.3f; a basket item shares the "
            "basket's style with p=%.2f (%d held-out training baskets)",
            res.x[0],
            res.x[1],
            res.x[2],
            len(tg),
        )
        out: np.ndarray = res.x[:2]
        return out

    @staticmethod
    def _prior(y: np.ndarray, tagged: np.ndarray, orders: sp.csr_matrix | None) -> np.ndarray:
        """Market share of each style: tags weighted by how often the product is bought (k,)."""
        weight = np.ones(len(y))
        if orders is not None and orders.nnz:
            weight = weight + np.asarray((orders > 0).sum(axis=0)).ravel()
        prior = (y[tagged] * weight[tagged, None]).sum(axis=0)
        prior = prior / prior.sum() + 1e-3
        out: np.ndarray = prior / prior.sum()
        return out

    def _content_ratios(
        self, catalog: Catalog, y: np.ndarray, tagged: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Content log-ratios (n, k) against the content model's own base rate, scaled by the
        share of the product's features the tagger knows: from a model on all tagged products,
        and held out (each tagged product predicted by a model that never saw it; untagged rows
        as in the first)."""
        features = catalog_features(catalog)
        vocab = ContentVocabulary(self.min_feature_count).fit(
            [features[i] for i in np.flatnonzero(tagged)]
        )
        x = vocab.transform(features)
        self.n_content_features_ = len(vocab.names_)
        k = y.shape[1]
        if x.shape[1] == 0:
            self.content_coverage_ = np.zeros(len(y))
            zeros = np.zeros((len(y), k))
            return zeros, zeros

        def ratios(model: SoftmaxRegression, rows: np.ndarray) -> np.ndarray:
            base = log_softmax(model.intercept_[None, :])
            out: np.ndarray = np.log(model.predict_proba(x[rows]) + _EPS) - base
            return out

        # the tagger's evidence counts in proportion to how much of the product it has seen: a
        # pair of gloves known only by its colour ("blue") must not read as a modern sofa would
        n_features = np.array([max(len(f), 1) for f in features], dtype=np.float64)
        self.content_coverage_ = np.asarray(x.sum(axis=1)).ravel() / n_features
        tagged_rows = np.flatnonzero(tagged)
        full_model = SoftmaxRegression(self.l2).fit(x[tagged_rows], y[tagged_rows])
        full = ratios(full_model, np.arange(len(y))) * self.content_coverage_[:, None]
        heldout = full.copy()
        n_folds = min(self.n_folds, len(tagged_rows))
        if n_folds >= 2:
            rng = np.random.default_rng(self.seed)
            folds = np.array_split(rng.permutation(tagged_rows), n_folds)
            for test in folds:
                train = np.setdiff1d(tagged_rows, test)
                model = SoftmaxRegression(self.l2).fit(x[train], y[train])
                heldout[test] = ratios(model, test) * self.content_coverage_[test, None]
        return full, heldout

    def _behaviour_ratios(self, graph: sp.csr_matrix, seeds: np.ndarray) -> np.ndarray:
        """Log-ratio (n, k) of the style mix of co-purchased products to the prior; ``seeds``
        (n, k) are the neighbours' style masses (zero rows say nothing)."""
        mass_by_style = np.asarray(graph @ seeds)
        mass = mass_by_style.sum(axis=1, keepdims=True)
        # the mix a product with no style would see: seeds weighted by how connected they are
        # (not the market prior: big-basket products are over-represented among neighbours)
        base = np.asarray(graph.sum(axis=0)).ravel() @ seeds
        base = base / base.sum() * 0.999 + 0.001 / len(base)
        m = self.prior_strength
        mix = (mass_by_style + m * base) / (mass + m)
        out: np.ndarray = np.log(mix) - np.log(base)
        return out

    def item_evidence_weights(self) -> np.ndarray:
        """(n_items,) weight of each item's evidence in a basket reading (calibrated)."""
        out: np.ndarray = np.where(
            self.tagged_, self.basket_weights_[0], self.basket_weights_[1]
        ).astype(np.float32)
        return out

    # ------------------------------------------------------------------ reports
    def tag_disagreements(self, catalog: Catalog, min_confidence: float = 0.5) -> pd.DataFrame:
        """Tagged (or keyword-seeded) products whose held-out prediction (content + behaviour, never their own tag)
        picks another style with at least ``min_confidence``: what a merchandiser should check.

        Columns sku, title, tagged ('|'-joined), predicted, confidence; most confident first."""
        self._check_catalog(catalog)
        labels = self.labels_ > 0
        top = self.heldout_styles_.argmax(axis=1)
        conf = self.heldout_styles_.max(axis=1)
        rows = np.flatnonzero(
            labels.any(axis=1) & ~labels[np.arange(len(top)), top] & (conf >= min_confidence)
        )
        slugs = self.taxonomy_.slugs
        frame = pd.DataFrame(
            {
                "sku": catalog.frame["sku"].to_numpy()[rows],
                "title": catalog.frame["title"].to_numpy()[rows],
                "tagged": ["|".join(slugs[j] for j in np.flatnonzero(labels[r])) for r in rows],
                "predicted": [slugs[top[r]] for r in rows],
                "confidence": conf[rows].astype(float),
            }
        )
        return frame.sort_values("confidence", ascending=False, kind="stable").reset_index(
            drop=True
        )

    def _check_catalog(self, catalog: Catalog) -> None:
        if len(catalog) != len(self.skus_) or not np.array_equal(
            np.asarray(catalog.ids.to_list(), dtype=str), self.skus_
        ):
            raise ValueError(
                "this catalog is not the one the style model was fitted on (SKUs differ)"
            )

    # ------------------------------------------------------------------ persistence
    def hyperparameters(self) -> dict[str, Any]:
        return {
            "l2": self.l2,
            "min_feature_count": self.min_feature_count,
            "n_folds": self.n_folds,
            "propagation_rounds": self.propagation_rounds,
            "prior_strength": self.prior_strength,
            "tag_trust": self.tag_trust,
            "neutral_threshold": self.neutral_threshold,
            "keyword_seeds": {k: list(v) for k, v in self.keyword_seeds.items()}
            if self.keyword_seeds
            else None,
            "calibration_share": self.calibration_share,
            "use_behaviour": self.use_behaviour,
            "seed": self.seed,
        }

    def save(self, directory: str | Path) -> Path:
        """Write ``style_model.npz`` (arrays) and ``style_model.json`` (taxonomy, settings)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.savez(
            directory / ARRAYS_FILE,
            item_styles=self.item_styles_,
            informativeness=self.informativeness_,
            neutral=self.neutral_,
            heldout_styles=self.heldout_styles_,
            prior=self.prior_,
            tagged=self.tagged_,
            seeded=self.seeded_,
            labels=self.labels_,
            skus=self.skus_,
            expert_weights=self.expert_weights_,
            basket_weights=self.basket_weights_,
            basket_item_agreement=np.float64(self.basket_item_agreement_),
        )
        meta = {
            "schema_version": SCHEMA_VERSION,
            "kind": "item_style_model",
            "hyperparameters": self.hyperparameters(),
            "taxonomy": self.taxonomy_.to_dict(),
            "expert_names": self.expert_names_,
            "learned": self.learned_,
            "summary": self.summary_,
        }
        (directory / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> ItemStyleModel:
        directory = Path(directory)
        meta_path = directory / META_FILE
        if not meta_path.exists():
            raise FileNotFoundError(f"{meta_path}: no style model here")
        meta = json.loads(meta_path.read_text())
        if meta.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(
                f"{meta_path}: style model schema version {meta.get('schema_version')!r} is not "
                f"supported (this code reads version {SCHEMA_VERSION}); retrain the model"
            )
        model = cls(**meta["hyperparameters"])
        model.taxonomy_ = StyleTaxonomy.from_dict(meta["taxonomy"], source=str(meta_path))
        with np.load(directory / ARRAYS_FILE, allow_pickle=False) as arrays:
            model.item_styles_ = arrays["item_styles"]
            model.informativeness_ = arrays["informativeness"]
            model.neutral_ = arrays["neutral"]
            model.heldout_styles_ = arrays["heldout_styles"]
            model.prior_ = arrays["prior"]
            model.tagged_ = arrays["tagged"]
            model.seeded_ = arrays["seeded"]
            model.labels_ = arrays["labels"]
            model.skus_ = arrays["skus"]
            model.expert_weights_ = arrays["expert_weights"]
            model.basket_weights_ = arrays["basket_weights"]
            model.basket_item_agreement_ = float(arrays["basket_item_agreement"])
        if model.item_styles_.shape[1] != len(model.taxonomy_):
            raise ValueError(
                f"{directory}: item styles have {model.item_styles_.shape[1]} columns but the "
                f"taxonomy has {len(model.taxonomy_)} styles"
            )
        model.expert_names_ = list(meta["expert_names"])
        model.learned_ = bool(meta["learned"])
        model.summary_ = meta["summary"]
        return model
