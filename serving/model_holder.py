"""The model being served, and how it is replaced without a restart.

A ``LoadedModel`` is immutable; the holder swaps one reference (atomic in CPython), so a
request that took ``holder.current`` at its start finishes on that object even if a reload
lands meanwhile. A reload resolves the pointer (MLflow alias or bundle path), and only when it
changed: fetches, verifies (``recsys.bundle_check``: manifest checksums, and the native loaders
run in a child process, so a truncated ``ranker.txt`` that would abort LightGBM's parser never
reaches this process), loads, smoke-tests, then swaps. Any failure keeps the old model and is
recorded in ``last_error``. Polling runs in a daemon thread every ``poll_seconds``.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from recsys.bundle_check import verify_bundle
from recsys.recommendation import BasketLine, RecommendationRequest
from serving.model_source import ModelPointer, ModelSource

if TYPE_CHECKING:
    from recsys.data.catalog import Catalog
    from recsys.recommender import Recommender

log = logging.getLogger(__name__)

Outcome = Literal["swapped", "unchanged", "failed", "busy"]


@dataclass
class LoadedModel:
    """One loaded bundle plus what serving needs to answer fast (per-row display fields)."""

    recommender: Recommender
    pointer: ModelPointer
    bundle_dir: Path
    loaded_at: datetime
    titles: list[str] = field(default_factory=list)
    categories: list[str | None] = field(default_factory=list)
    prices: list[float] = field(default_factory=list)
    _style_cache: dict[str, dict[str, float]] = field(default_factory=dict, repr=False)

    @classmethod
    def build(
        cls, recommender: Recommender, pointer: ModelPointer, bundle_dir: Path
    ) -> LoadedModel:
        frame = recommender.catalog.frame
        return cls(
            recommender=recommender,
            pointer=pointer,
            bundle_dir=bundle_dir,
            loaded_at=datetime.now(UTC),
            titles=[str(t) for t in frame["title"]],
            categories=[c if c else None for c in frame["category"]],
            prices=[float(p) for p in frame["price"]],
        )

    @property
    def catalog(self) -> Catalog:
        return self.recommender.catalog

    @property
    def version(self) -> str:
        """Registry ``name/version`` when served from MLflow, else the bundle's own version."""
        if self.pointer.registry_version is not None:
            return f"{self.pointer.model_name}/{self.pointer.registry_version}"
        return str(getattr(self.recommender, "version", "") or self.pointer.fingerprint)

    @property
    def run_id(self) -> str | None:
        if self.pointer.run_id:
            return self.pointer.run_id
        manifest = getattr(self.recommender, "manifest", None) or {}
        return manifest.get("run_id")

    def row(self, sku: str) -> int:
        return self.catalog.ids.get(sku)

    def item_styles(self, skus: list[str]) -> dict[str, dict[str, float]]:
        """Style distribution of single known SKUs (cached per model): feeds style affinity."""
        out: dict[str, dict[str, float]] = {}
        for sku in skus:
            if sku in self._style_cache:
                out[sku] = self._style_cache[sku]
                continue
            row = self.row(sku)
            if row < 0:
                continue
            try:
                dist = self._item_style(sku, row)
            except Exception:  # noqa: BLE001 - style is a nicety for online state
                dist = {}
            if len(self._style_cache) < 200_000:
                self._style_cache[sku] = dist
            out[sku] = dist
        return out

    def _item_style(self, sku: str, row: int) -> dict[str, float]:
        matrix = getattr(self.recommender, "item_styles", None)  # (n_items, n_styles)
        if matrix is not None:
            vec = [float(v) for v in matrix[row]]
            total = sum(v for v in vec if v > 0)
            slugs = self.catalog.taxonomy.slugs
            return (
                {s: v / total for s, v in zip(slugs, vec, strict=False) if v > 0} if total else {}
            )
        reading, _ = self.recommender.infer_style([BasketLine(sku, 1)])
        return {k: float(v) for k, v in reading.distribution.items() if v > 0}


def default_loader(bundle_dir: Path) -> Recommender:
    """Load a bundle with the feature store (imported lazily: no work at import time)."""
    from feature_store import load_recommender

    return load_recommender(bundle_dir)


def smoke_test(recommender: Recommender) -> None:
    """Exercise every call the API makes on a real basket; raise on any problem."""
    catalog = recommender.catalog
    if len(catalog) == 0:
        raise ValueError("the bundle's catalog is empty")
    skus = [str(s) for s in catalog.skus[: min(2, len(catalog))]]
    basket = tuple(BasketLine(s, 1) for s in skus)
    for page in ("cart", "checkout"):
        rec = recommender.recommend(RecommendationRequest(basket=basket, page=page, k=5))
        for item in rec.items:
            if catalog.ids.get(item.sku) < 0:
                raise ValueError(f"smoke test: recommended sku {item.sku!r} is not in the catalog")
    recommender.recommend(RecommendationRequest(basket=(), page="cart", k=5))
    recommender.infer_style(list(basket))
    recommender.product_recommendations(skus[0], 5)
    recommender.popular(5)


def _settle_heap() -> None:
    """Collect once, then freeze the survivors (the model) out of the cyclic GC.

    A loaded 50k-SKU model is ~150k tracked objects: every full collection walks them all
    (~40 ms on the development machine), which would land in some requests' latency. Frozen
    objects are skipped by later collections; unfreezing first lets the previous model's
    cycles be collected after a swap. One pause per swap instead of one every few seconds.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


@dataclass(frozen=True)
class ReloadResult:
    outcome: Outcome
    version: str | None
    message: str
    seconds: float


class ModelHolder:
    """Holds the current ``LoadedModel`` and replaces it on promotion (see module doc)."""

    def __init__(
        self,
        source: ModelSource,
        *,
        poll_seconds: float = 30.0,
        loader: Callable[[Path], Recommender] = default_loader,
        on_swap: Callable[[LoadedModel], None] | None = None,
        on_reload: Callable[[ReloadResult], None] | None = None,
        verify: Callable[[Path], None] | None = verify_bundle,
    ) -> None:
        self.source = source
        self.poll_seconds = poll_seconds
        self.loader = loader
        self.on_swap = on_swap
        self.on_reload = on_reload
        self.verify = verify
        self._current: LoadedModel | None = None
        self._reload_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None
        self.last_check: datetime | None = None

    @property
    def current(self) -> LoadedModel | None:
        return self._current

    def reload(self, *, force: bool = False) -> ReloadResult:
        """Check the pointer and swap in a new model if it changed (or ``force``)."""
        if not self._reload_lock.acquire(blocking=False):
            return ReloadResult("busy", self._version(), "a reload is already running", 0.0)
        t0 = time.perf_counter()
        try:
            result = self._reload(force, t0)
        finally:
            self._reload_lock.release()
        if self.on_reload is not None:
            self.on_reload(result)
        return result

    def _version(self) -> str | None:
        return self._current.version if self._current is not None else None

    def _reload(self, force: bool, t0: float) -> ReloadResult:
        self.last_check = datetime.now(UTC)
        current = self._current
        try:
            pointer = self.source.resolve()
            if (
                not force
                and current is not None
                and pointer.fingerprint == current.pointer.fingerprint
            ):
                return ReloadResult("unchanged", current.version, "already serving it", 0.0)
            bundle_dir = self.source.fetch(pointer)
            if self.verify is not None:
                self.verify(bundle_dir)
            recommender = self.loader(bundle_dir)
            smoke_test(recommender)
            loaded = LoadedModel.build(recommender, pointer, bundle_dir)
        except Exception as exc:  # noqa: BLE001 - keep serving the old model, whatever broke
            error = f"{type(exc).__name__}: {exc}"
            kept = f"; still serving {current.version}" if current is not None else ""
            # the poller retries every few seconds: say it once, not every poll
            level = logging.DEBUG if error == self.last_error else logging.WARNING
            log.log(level, "model reload failed%s: %s", kept, error)
            self.last_error = error
            return ReloadResult(
                "failed", self._version(), self.last_error + kept, time.perf_counter() - t0
            )
        self._current = loaded  # the swap: one reference assignment
        self.last_error = None
        _settle_heap()
        log.info("serving model %s from %s", loaded.version, pointer.resolved)
        if self.on_swap is not None:
            self.on_swap(loaded)
        return ReloadResult(
            "swapped", loaded.version, f"now serving {loaded.version}", time.perf_counter() - t0
        )

    def start_polling(self) -> None:
        """Poll the pointer every ``poll_seconds`` in a daemon thread (0 = never)."""
        if self.poll_seconds <= 0 or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, name="model-poller", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.reload()
            except Exception:  # noqa: BLE001 - the poller must never die
                log.exception("model poll failed")

    def reload_in_background(self, *, force: bool = False) -> None:
        threading.Thread(
            target=self.reload, kwargs={"force": force}, name="model-reload", daemon=True
        ).start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
