"""Two small multinomial models fitted with L-BFGS in numpy/scipy (no sklearn at runtime).

``SoftmaxRegression``: L2-regularised multinomial logistic regression on sparse features with
soft labels (a product tagged with two styles counts half for each).
``ExpertPooling``: combines per-style log-likelihood ratios of several experts (content,
behaviour) with a few learned weights; fitted on held-out predictions so the result is
calibrated rather than the product of two overconfident opinions.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    out: np.ndarray = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return out


class SoftmaxRegression:
    """Multinomial logistic regression; ``coef_`` (n_features, n_classes), ``intercept_``."""

    def __init__(self, l2: float = 1.0, max_iter: int = 300) -> None:
        self.l2 = l2
        self.max_iter = max_iter

    def fit(
        self, x: sp.csr_matrix, y: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> SoftmaxRegression:
        """``x`` (n, d) features, ``y`` (n, k) label distributions (rows sum to 1)."""
        n, d = x.shape
        k = y.shape[1]
        sw = np.ones(n) if sample_weight is None else np.asarray(sample_weight, float)
        yw = y.astype(np.float64) * sw[:, None]
        xt = x.T.tocsr()

        def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
            w = theta[: d * k].reshape(d, k)
            b = theta[d * k :]
            logp = log_softmax(np.asarray(x @ w) + b)
            value = -(yw * logp).sum() + 0.5 * self.l2 * (w * w).sum()
            g = np.exp(logp) * yw.sum(axis=1, keepdims=True) - yw
            gw = np.asarray(xt @ g) + self.l2 * w
            return float(value), np.concatenate([gw.ravel(), g.sum(axis=0)])

        res = minimize(
            loss,
            np.zeros(d * k + k),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": self.max_iter},
        )
        self.coef_ = res.x[: d * k].reshape(d, k)
        self.intercept_ = res.x[d * k :]
        return self

    def predict_proba(self, x: sp.csr_matrix) -> np.ndarray:
        """(n, k) class probabilities."""
        out: np.ndarray = np.exp(log_softmax(np.asarray(x @ self.coef_) + self.intercept_))
        return out


class ExpertPooling:
    """p(style | item) ∝ prior * exp(sum_e a_e * r_e), r_e the expert's log-ratio to the prior.

    One non-negative weight per expert column, no per-style intercepts: an item on which every
    expert is silent (ratios 0) gets exactly the prior, which is what "style-neutral" means."""

    def __init__(self, l2: float = 1e-3, max_iter: int = 200) -> None:
        self.l2 = l2
        self.max_iter = max_iter

    def fit(self, ratios: np.ndarray, y: np.ndarray, log_prior: np.ndarray) -> ExpertPooling:
        """``ratios`` (n, e, k) log-ratios per expert; ``y`` (n, k) labels; ``log_prior`` (k,)."""
        n, e, k = ratios.shape

        def loss(a: np.ndarray) -> tuple[float, np.ndarray]:
            logp = log_softmax(log_prior + np.einsum("nek,e->nk", ratios, a))
            value = -(y * logp).sum() + 0.5 * self.l2 * (a * a).sum()
            g = np.exp(logp) * y.sum(axis=1, keepdims=True) - y
            return float(value), np.einsum("nk,nek->e", g, ratios) + self.l2 * a

        res = minimize(
            loss,
            np.ones(e),
            jac=True,
            method="L-BFGS-B",
            bounds=[(0.0, None)] * e,
            options={"maxiter": self.max_iter},
        )
        self.weights_ = res.x
        return self

    def predict_proba(self, ratios: np.ndarray, log_prior: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.exp(
            log_softmax(log_prior + np.einsum("nek,e->nk", ratios, self.weights_))
        )
        return out
