"""The model bundle as an MLflow pyfunc model, so a data scientist can write
``mlflow.pyfunc.load_model("models:/home-xsell@champion").predict(baskets)``.

The logged model holds the bundle (plain files) under ``artifacts/bundle`` and is loaded
"from code" (``training/pyfunc_entry.py``), so nothing is pickled.

Input: a DataFrame, one row per basket: ``basket_id`` (str), ``skus`` (list of str), and
optionally ``user_id`` (str or None: a guest), ``page`` ("cart" | "checkout", default cart)
and ``k`` (int, items to return; default the ``k`` param, else 10).
Output: one row per basket, structured (Python objects, the same records as ``recsys
recommend`` writes): ``basket_id``; ``items`` list of {sku, score, sources, reason};
``style`` {top, second, confidence, distribution {style: share}, explanation, evidence
[{sku, style, weight}]}; ``unknown_skus`` list; ``accessories`` list of {sku, rule_id, reason}.
The model signature describes exactly these types.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.pyfunc.model import PythonModel

from training.baskets import BasketFormatError, parse_basket, recommendation_to_record
from training.model_layout import BUNDLE_ARTIFACT

ENTRY_FILE = Path(__file__).with_name("pyfunc_entry.py")
DEFAULT_K = 10


class RecommenderPyfunc(PythonModel):
    """Thin adapter: DataFrame of baskets -> ``Recommender.recommend_batch`` -> DataFrame."""

    def load_context(self, context: Any) -> None:
        from feature_store import load_recommender

        self.recommender_ = load_recommender(Path(context.artifacts[BUNDLE_ARTIFACT]))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        default_k = int((params or {}).get("k", DEFAULT_K))
        return predict_frame(self.recommender_, model_input, default_k)


def _clean(value: Any) -> Any:
    """Frame cells to JSON-ish values: NaN/None -> None, numpy arrays -> lists."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def predict_frame(
    recommender: Any, frame: pd.DataFrame, default_k: int = DEFAULT_K
) -> pd.DataFrame:
    """Recommend for every basket row of ``frame`` (see the module docstring for columns)."""
    if "basket_id" not in frame.columns or "skus" not in frame.columns:
        raise BasketFormatError(
            f"baskets need columns 'basket_id' and 'skus'; got {', '.join(map(str, frame.columns))}"
        )
    cols = [c for c in ("basket_id", "skus", "user_id", "page", "k") if c in frame.columns]
    ids, requests = [], []
    for i, row in enumerate(frame[cols].itertuples(index=False, name=None)):
        record = {c: _clean(v) for c, v in zip(cols, row, strict=True)}
        if record.get("k") is not None:
            record["k"] = int(record["k"])
        try:
            basket_id, request = parse_basket(record, default_k)
        except BasketFormatError as exc:
            raise BasketFormatError(f"row {i}: {exc}") from exc
        ids.append(basket_id)
        requests.append(request)
    recs = recommender.recommend_batch(requests) if requests else []
    records = [recommendation_to_record(b, r) for b, r in zip(ids, recs, strict=True)]
    return pd.DataFrame(
        {col: [rec[col] for rec in records] for col in OUTPUT_COLUMNS}, columns=list(OUTPUT_COLUMNS)
    )


OUTPUT_COLUMNS = ("basket_id", "items", "style", "unknown_skus", "accessories")


def model_signature() -> Any:
    """Input/output schema of ``predict`` (optional inputs may be left out); the outputs are
    arrays of objects and an object, as ``predict`` returns them."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Array, ColSpec, Map, Object, Property, Schema

    inputs = Schema(
        [
            ColSpec("string", "basket_id"),
            ColSpec(Array("string"), "skus"),
            ColSpec("string", "user_id", required=False),
            ColSpec("string", "page", required=False),
            ColSpec("long", "k", required=False),
        ]
    )
    item = Object(
        [
            Property("sku", "string"),
            Property("score", "double"),
            Property("sources", Array("string")),
            Property("reason", "string"),
        ]
    )
    evidence = Object(
        [Property("sku", "string"), Property("style", "string"), Property("weight", "double")]
    )
    style = Object(
        [
            Property("top", "string", required=False),
            Property("second", "string", required=False),
            Property("confidence", "double"),
            Property("distribution", Map("double")),
            Property("explanation", "string"),
            Property("evidence", Array(evidence)),
        ]
    )
    accessory = Object(
        [Property("sku", "string"), Property("rule_id", "string"), Property("reason", "string")]
    )
    outputs = Schema(
        [
            ColSpec("string", "basket_id"),
            ColSpec(Array(item), "items"),
            ColSpec(style, "style"),
            ColSpec(Array("string"), "unknown_skus"),
            ColSpec(Array(accessory), "accessories"),
        ]
    )
    return ModelSignature(inputs=inputs, outputs=outputs)


def input_example(skus: list[str]) -> pd.DataFrame:
    """Two baskets built from real catalog SKUs (cart and checkout, one with a guest user)."""
    first = skus[:2] if len(skus) >= 2 else skus
    second = skus[2:3] or skus[:1]
    return pd.DataFrame(
        {
            "basket_id": ["example-1", "example-2"],
            "skus": [list(first), list(second)],
            "user_id": [None, "example-user"],
            "page": ["cart", "checkout"],
            "k": [DEFAULT_K, 5],
        }
    )


def code_paths() -> list[str]:
    """The project's packages, copied into the model so ``load_model`` works wherever the
    dependencies (but not necessarily this checkout) are installed."""
    root = Path(__file__).resolve().parent.parent
    return [
        str(root / pkg) for pkg in ("recsys", "feature_store", "training") if (root / pkg).is_dir()
    ]
