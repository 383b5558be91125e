"""Routes each recommendation request to its experiment variant in one API process.

A daemon thread polls the experiment store's change counter (``experiment_poll_seconds``);
when experiments start or stop it loads every running variant's model (one ``ModelHolder`` per
distinct model URI, no polling: a variant's model must not change under a running experiment)
and drops the ones no longer needed. Requests call ``route`` and get the model (with the
variant's knobs applied as a view), the rules engine and the labels to log. A request without
a user or session id, on a placement no experiment runs on, or whose variant model failed to
load is served by the champion with ``experiment = None`` (never counted in a report).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from feature_store.experiment_store import ExperimentStore, check_memory_budget
from recsys.experiment import Experiment, Variant, assign, with_knobs
from recsys.settings import Settings
from serving.model_holder import LoadedModel, ModelHolder
from serving.model_source import ModelSource

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Routed:
    model: LoadedModel | None
    rules: Any
    experiment: str | None
    variant: str


class ExperimentRuntime:
    def __init__(self, settings: Settings, store: ExperimentStore, champion: ModelHolder) -> None:
        self.settings = settings
        self.store = store
        self.champion = champion
        self._running: dict[str, Experiment] = {}  # placement -> experiment
        self._holders: dict[str, ModelHolder] = {}  # model uri -> holder
        self._views: dict[tuple[int, str], LoadedModel] = {}
        self._rules: dict[tuple[Any, tuple[str, ...]], Any] = {}
        self._counter = -1
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rules_runtime: Any = None
        self.last_error: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, rules_runtime: Any = None) -> ExperimentRuntime:
        self.rules_runtime = rules_runtime
        self._thread = threading.Thread(target=self._poll, name="experiments", daemon=True)
        self._thread.start()
        self.refresh()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.store.dispose()

    def _poll(self) -> None:
        while not self._stop.wait(self.settings.experiment_poll_seconds):
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - the poller must never die
                log.exception("experiment refresh failed")

    def refresh(self, force: bool = False) -> bool:
        """Pick up starts and stops; True when the running set changed."""
        counter = self.store.change_counter()
        if counter == self._counter and not force:
            return False
        with self._lock:
            running = self.store.running()
            uris = {v.model for e in running for v in e.variants if v.model is not None}
            holders = {u: h for u, h in self._holders.items() if u in uris}
            for uri in uris - holders.keys():
                holder = self._holder(uri)
                result = holder.reload()
                if holder.current is None:
                    self.last_error = f"variant model {uri} not loaded: {result.message}"
                    log.error("%s; its requests are served by the champion", self.last_error)
                holders[uri] = holder
            self._holders = holders
            self._views = {}
            self._running = {p: e for e in running for p in e.placements}
            self._counter = counter
        log.info("experiments running: %s", ", ".join(e.name for e in running) or "none")
        return True

    def _holder(self, uri: str) -> ModelHolder:
        source = ModelSource(self.settings.model_copy(update={"model_uri": uri}))
        return ModelHolder(source, poll_seconds=0, loader=self.champion.loader)

    def model_dir(self, uri: str | None) -> Path:
        """The local bundle of a model URI (None = the champion): for the memory budget."""
        if uri is None:
            current = self.champion.current
            if current is None:
                raise LookupError("no champion loaded")
            return current.bundle_dir
        loaded = self._holders.get(uri)
        if loaded is not None and loaded.current is not None:
            return loaded.current.bundle_dir
        source = ModelSource(self.settings.model_copy(update={"model_uri": uri}))
        return source.fetch(source.resolve())

    def check_budget(self, experiment: Experiment, others: list[Experiment]) -> None:
        """Raise ``ExperimentRefused`` if starting ``experiment`` would exceed the budget."""
        check_memory_budget(
            [experiment, *others], self.model_dir, self.settings.experiment_memory_budget_mb
        )

    # -- per request -------------------------------------------------------------------------
    def running(self) -> list[Experiment]:
        return list({e.name: e for e in self._running.values()}.values())

    def route(
        self, page: str, unit: str | None, champion: LoadedModel | None, rules: Any
    ) -> Routed:
        exp = self._running.get(page)
        if exp is None or not unit:
            return Routed(champion, rules, None, "default")
        variant = assign(exp, unit)
        if variant.model is None:
            base = champion
        else:
            holder = self._holders.get(variant.model)
            base = holder.current if holder is not None else None
        if base is None:
            return Routed(champion, rules, None, "default")
        try:
            model = self._view(base, variant)
            variant_rules = self._variant_rules(variant, rules)
        except Exception as exc:  # noqa: BLE001 - a broken variant falls back to the champion
            log.warning("variant %s/%s unusable (%s): champion serves", exp.name, variant.name, exc)
            return Routed(champion, rules, None, "default")
        return Routed(model, variant_rules, exp.name, variant.name)

    def _view(self, base: LoadedModel, variant: Variant) -> LoadedModel:
        if variant.knobs.is_default:
            return base
        key = (id(base), variant.knobs.model_dump_json())
        view = self._views.get(key)
        if view is None or view.pointer is not base.pointer:
            view = dataclasses.replace(
                base, recommender=with_knobs(base.recommender, variant.knobs)
            )
            self._views[key] = view
        return view

    def _variant_rules(self, variant: Variant, rules: Any) -> Any:
        sel = variant.rules
        if sel.mode == "all" or self.rules_runtime is None:
            return rules
        key = (getattr(self.rules_runtime, "_compiled_key", None), tuple(sel.tags))
        engine = self._rules.get(key)
        if engine is None:
            stored = [s.rule for s in self.rules_runtime.store.list()] if sel.mode == "tags" else []
            chosen = [r for r in stored if set(r.tags) & set(sel.tags)]
            engine = self.rules_runtime.compile(chosen)  # "none": an empty engine, not the defaults
            if len(self._rules) > 16:  # old rule versions
                self._rules.clear()
            self._rules[key] = engine
        return engine
