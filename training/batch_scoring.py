"""Batch scoring: a JSON-lines file of baskets in, a JSON-lines file of recommendations out.

The model is a bundle folder, a downloaded MLflow model folder, or an MLflow URI
(``models:/home-xsell@champion``, ``models:/home-xsell/3``, ``runs:/<run_id>/model``).
Unknown SKUs are reported on each output line (``unknown_skus``); a malformed input line is
skipped and reported with its line number; neither stops the file.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from recsys import bundle as bundle_layout
from recsys.recommendation import RecommendationRequest
from recsys.settings import Settings
from training.baskets import BasketFormatError, parse_basket, recommendation_to_record

log = logging.getLogger(__name__)
URI_SCHEMES = ("models:/", "runs:/", "mlflow-artifacts:/", "s3://", "gs://", "http://", "https://")
DEFAULT_CHUNK = 2000


class ModelSourceError(RuntimeError):
    """The ``--model`` argument does not lead to a model bundle."""


def find_bundle(folder: Path) -> Path:
    """The bundle inside ``folder`` (``recsys.bundle.find_bundle``), as a ``ModelSourceError``."""
    try:
        return bundle_layout.find_bundle(folder)
    except bundle_layout.BundleError as exc:
        raise ModelSourceError(str(exc)) from exc


def resolve_bundle(
    model: str, settings: Settings | None = None, workdir: Path | None = None
) -> Path:
    """Local bundle folder for ``model`` (downloading MLflow artifacts into ``workdir``)."""
    if model.startswith(URI_SCHEMES):
        import mlflow
        from mlflow.exceptions import MlflowException

        from training.tracking import configure_mlflow

        configure_mlflow(settings)
        dst = Path(workdir or tempfile.mkdtemp(prefix="recsys-model-"))
        try:
            local = mlflow.artifacts.download_artifacts(artifact_uri=model, dst_path=str(dst))
        except MlflowException as exc:
            raise ModelSourceError(f"cannot fetch {model}: {exc.message}") from exc
        return find_bundle(Path(local))
    path = Path(model)
    if not path.exists():
        raise ModelSourceError(
            f"{model}: no such file or folder (use a bundle folder, models:/NAME@ALIAS, "
            "models:/NAME/VERSION or runs:/RUN_ID/model)"
        )
    if not path.is_dir():
        raise ModelSourceError(f"{model}: is a file; a model bundle is a folder")
    return find_bundle(path)


def load_model(model: str, settings: Settings | None = None, workdir: Path | None = None) -> Any:
    """The ``Recommender`` behind ``model`` (see ``resolve_bundle``)."""
    from feature_store import load_recommender

    return load_recommender(resolve_bundle(model, settings, workdir))


@dataclass
class ScoringSummary:
    baskets_in: int = 0
    baskets_out: int = 0
    malformed: list[tuple[int, str]] = field(default_factory=list)  # (line number, problem)
    baskets_with_unknown_skus: int = 0
    seconds: float = 0.0

    @property
    def baskets_per_minute(self) -> float:
        return 60.0 * self.baskets_out / self.seconds if self.seconds > 0 else 0.0

    def describe(self) -> str:
        return (
            f"scored {self.baskets_out} of {self.baskets_in} baskets in {self.seconds:.1f} s "
            f"({self.baskets_per_minute:,.0f} baskets/min); {len(self.malformed)} malformed "
            f"line(s) skipped; {self.baskets_with_unknown_skus} basket(s) had unknown SKUs"
        )


def _read_baskets(
    lines: TextIO, default_k: int, summary: ScoringSummary
) -> Iterator[tuple[str, RecommendationRequest]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        summary.baskets_in += 1
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            summary.malformed.append((number, f"not valid JSON: {exc.msg} (column {exc.colno})"))
            continue
        try:
            yield parse_basket(record, default_k)
        except BasketFormatError as exc:
            summary.malformed.append((number, str(exc)))


def score_stream(
    recommender: Any,
    source: TextIO,
    sink: TextIO,
    *,
    k: int = 10,
    chunk_size: int = DEFAULT_CHUNK,
) -> ScoringSummary:
    """Score every basket line of ``source`` into ``sink`` (same order), ``chunk_size`` at a
    time through ``recommend_batch``."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    summary = ScoringSummary()
    start = time.perf_counter()
    ids: list[str] = []
    requests: list[RecommendationRequest] = []

    def flush() -> None:
        recs = recommender.recommend_batch(requests)
        out = []
        for basket_id, rec in zip(ids, recs, strict=True):
            if rec.unknown_skus:
                summary.baskets_with_unknown_skus += 1
            out.append(json.dumps(recommendation_to_record(basket_id, rec), ensure_ascii=False))
        sink.write("\n".join(out) + "\n")
        summary.baskets_out += len(out)
        ids.clear()
        requests.clear()

    for basket_id, request in _read_baskets(source, k, summary):
        ids.append(basket_id)
        requests.append(request)
        if len(requests) >= chunk_size:
            flush()
    if requests:
        flush()
    summary.seconds = time.perf_counter() - start
    return summary


def score_file(
    recommender: Any, baskets: Path, out: Path, *, k: int = 10, chunk_size: int = DEFAULT_CHUNK
) -> ScoringSummary:
    """``score_stream`` over files; the output is written to a temporary name and renamed, so
    a crash never leaves a half-written file that looks complete."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with open(baskets, encoding="utf-8") as src, open(partial, "w", encoding="utf-8") as dst:
        summary = score_stream(recommender, src, dst, k=k, chunk_size=chunk_size)
    partial.replace(out)
    return summary
