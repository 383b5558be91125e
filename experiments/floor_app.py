"""The serving floor: a minimal FastAPI app doing only the irreducible work of a request.

Parse the basket (pydantic, the same body the real API takes), map SKUs to rows, one exact
faiss search (``IndexFlatIP``, k=200) over the catalog's item vectors (the bundle's CF item
factors), LightGBM predict on the 200 candidates x 30 features (a 150-tree, 31-leaf model
trained once by ``experiments/bench_serving.py`` on synthetic rows), ten items out as JSON.

``experiments/bench_serving.py`` runs it next to ``recsys serve`` with the same worker count and
request bodies; the real service's CPU per request is judged as a ratio to this app's.

    FLOOR_BUNDLE=data/load/sample/bundle FLOOR_MODEL=/tmp/floor.txt \\
        uvicorn --factory experiments.floor_app:app_from_env --workers 2
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

N_FEATURES = 30
N_CANDIDATES = 200
N_TREES = 150


class Line(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sku: str = Field(min_length=1, max_length=128)
    quantity: int = Field(1, ge=1, le=10_000)


class Body(BaseModel):
    """The fields of the real API's body that the bench sends."""

    model_config = ConfigDict(extra="forbid")
    basket: list[Line] = Field(default_factory=list, max_length=100)
    page: str = "cart"
    k: int = Field(10, ge=1, le=100)


def train_floor_model(path: Path, seed: int = 0) -> Path:
    """A lambdarank model of ``N_TREES`` trees x 31 leaves on synthetic rows (no early stop)."""
    import lightgbm as lgb

    rng = np.random.default_rng(seed)
    n_groups, per = 200, 100
    X = rng.normal(size=(n_groups * per, N_FEATURES)).astype(np.float32)
    y = (X[:, :5].sum(axis=1) + rng.normal(scale=2.0, size=len(X)) > 2.5).astype(np.int32)
    params = {
        "objective": "lambdarank",
        "num_leaves": 31,
        "learning_rate": 0.05,
        "min_data_in_leaf": 20,
        "seed": seed,
        "deterministic": True,
        "num_threads": 1,
        "verbosity": -1,
    }
    ds = lgb.Dataset(X, label=y, group=np.full(n_groups, per))
    booster = lgb.train(params, ds, num_boost_round=N_TREES)
    booster.save_model(str(path))
    return path


def app_from_env():  # noqa: ANN201 - FastAPI app
    """uvicorn factory: ``FLOOR_BUNDLE`` (a recsys bundle folder), ``FLOOR_MODEL`` (LightGBM text)."""
    import faiss
    import lightgbm as lgb
    from fastapi import FastAPI
    from fastapi.responses import Response

    faiss.omp_set_num_threads(1)
    bundle = Path(os.environ["FLOOR_BUNDLE"])
    from recsys.bundle import load_catalog

    skus = [str(s) for s in load_catalog(bundle).skus]
    with np.load(bundle / "generators" / "cf" / "factors.npz") as z:
        vectors = np.ascontiguousarray(z["item_factors"], dtype=np.float32)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    row_of = {s: i for i, s in enumerate(skus)}
    sku_arr = np.asarray(skus, dtype=object)
    # per-item feature block: what a feature store would precompute
    item_features = np.random.default_rng(1).normal(size=(len(skus), N_FEATURES)).astype(np.float32)
    booster = lgb.Booster(model_file=os.environ["FLOOR_MODEL"])

    app = FastAPI()

    @app.post("/v1/recommendations")
    async def recommend(body: Body) -> Response:
        rows = [r for r in (row_of.get(line.sku, -1) for line in body.basket) if r >= 0]
        q = vectors[rows].mean(axis=0, keepdims=True) if rows else vectors[:1]
        scores, cand = index.search(q, N_CANDIDATES)
        cand = cand[0][cand[0] >= 0]
        X = item_features[cand]
        X[:, 0] = scores[0][: len(cand)]
        s = booster.predict(X, num_threads=1)
        top = np.argsort(-s, kind="stable")[: body.k]
        items = [{"sku": sku_arr[cand[i]], "score": float(s[i])} for i in top]
        return Response(json.dumps({"items": items}), media_type="application/json")

    @app.get("/readyz")
    async def ready() -> dict:
        return {"ready": True}

    return app
