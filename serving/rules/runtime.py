"""Keeps a compiled ``RuleEngine`` fresh in one API process.

A daemon thread polls the store's change counter every ``settings.rules_poll_seconds`` and the
catalog provider (the served model may be swapped); when either changed, it recompiles and
swaps one reference. Requests read ``runtime.engine()`` once and keep that object. Writes made
through this process's API call ``refresh()`` at once; other processes catch up on their next
poll, so every replica serves a change within seconds, without a restart.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from recsys.controls import CompiledControls
from recsys.data.catalog import Catalog
from recsys.recommender import Recommender
from recsys.rules.engine import RuleEngine
from recsys.rules.mining import Suggestion
from recsys.rules.model import Rule
from recsys.rules.rules_file import default_rules
from recsys.settings import Settings
from serving.rules.store import ControlStore, RuleStore

log = logging.getLogger(__name__)

CatalogProvider = Callable[[], "Catalog | tuple[Catalog, np.ndarray | None] | None"]
RecommenderProvider = Callable[[], "Recommender | None"]
SuggestionsProvider = Callable[[], Sequence[Suggestion]]


@dataclass(frozen=True)
class CatalogView:
    catalog: Catalog
    item_styles: np.ndarray | None


def _resolve(value: Any) -> CatalogView | None:
    if value is None:
        return None
    if isinstance(value, Catalog):
        return CatalogView(value, None)
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], Catalog):
        return CatalogView(value[0], value[1])
    raise TypeError(
        f"catalog_provider must return a Catalog, (Catalog, item_styles) or None; got {type(value).__name__}"
    )


class RulesRuntime:
    """The rule store of this deployment plus the engine compiled from it."""

    def __init__(
        self,
        settings: Settings,
        store: RuleStore[Rule],
        seed_defaults: bool = True,
        controls_store: ControlStore | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.controls_store = controls_store or ControlStore(store.url, store.table_prefix)
        self._controls: CompiledControls | None = None
        self.seed_defaults = seed_defaults
        self._catalog_provider: CatalogProvider | None = None
        self._recommender_provider: RecommenderProvider | None = None
        self._suggestions_provider: SuggestionsProvider | None = None
        self._engine: RuleEngine | None = None
        self._compiled_key: tuple[int, int, int] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None
        self.started = False
        self._store_ready = False

    # -- lifecycle ---------------------------------------------------------------------------
    def start(
        self,
        catalog_provider: CatalogProvider | None = None,
        recommender_provider: RecommenderProvider | None = None,
        suggestions_provider: SuggestionsProvider | None = None,
    ) -> RulesRuntime:
        """Create tables, load the default rules into an empty store, compile, start polling.

        ``catalog_provider()`` returns the served ``Catalog`` (optionally with its
        (n_items, n_styles) item style matrix) or None; when omitted, the recommender's
        ``catalog``/``item_styles`` are used. ``recommender_provider()`` returns the current
        ``Recommender`` or None (preview then ranks by price). ``suggestions_provider()``
        returns the mined suggestions; default: the recommender's ``mined_suggestions``."""
        self._catalog_provider = catalog_provider
        self._recommender_provider = recommender_provider
        self._suggestions_provider = suggestions_provider
        self._prepare_store()
        self.refresh()
        self.started = True
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._poll, name="rules-poller", daemon=True)
            self._thread.start()
        return self

    def _prepare_store(self) -> bool:
        """Create the tables and seed the defaults once; a database that is down must not stop
        the service from starting (rules are retried on every poll, routes answer 503)."""
        if self._store_ready:
            return True
        try:
            self.store.create_tables()
            self.controls_store.create_tables()
            if self.seed_defaults and self.store.seed(default_rules()):
                log.info("rule store was empty: loaded the default rules")
        except Exception as exc:  # noqa: BLE001
            self.last_error = f"rule store unavailable: {exc}"
            log.warning(
                "%s; retrying every %.1f s", self.last_error, self.settings.rules_poll_seconds
            )
            return False
        self._store_ready = True
        return True

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.store.dispose()
        self.controls_store.dispose()

    # -- what routes read --------------------------------------------------------------------
    def engine(self) -> RuleEngine | None:
        """The current compiled engine (None until a catalog is available)."""
        return self._engine

    def controls(self) -> CompiledControls | None:
        """The current compiled answer controls (None until a catalog is available)."""
        return self._controls

    def catalog_view(self) -> CatalogView | None:
        if self._catalog_provider is not None:
            return _resolve(self._catalog_provider())
        rec = self.recommender()
        if rec is None:
            return None
        return CatalogView(rec.catalog, rec.item_styles)

    def recommender(self) -> Recommender | None:
        return self._recommender_provider() if self._recommender_provider else None

    def suggestions(self) -> list[Suggestion]:
        """Mined suggestions: from ``suggestions_provider`` if given, else the served
        recommender's ``mined_suggestions`` (loaded from the bundle's ``mined_rules.json``)."""
        try:
            if self._suggestions_provider is not None:
                return list(self._suggestions_provider())
            rec = self.recommender()
            return list(rec.mined_suggestions or []) if rec is not None else []
        except Exception as exc:  # noqa: BLE001 - a broken file must not break the rules page
            log.warning("mined suggestions unavailable: %s", exc)
            return []

    def compile(self, rules: Sequence[Rule]) -> RuleEngine | None:
        """An engine for ``rules`` against the current catalog (used by preview)."""
        view = self.catalog_view()
        if view is None:
            return None
        return RuleEngine.compile(rules, view.catalog, view.item_styles)

    # -- refreshing --------------------------------------------------------------------------
    def refresh(self, force: bool = False) -> bool:
        """Recompile if the store or the catalog changed; True when a new engine was swapped in."""
        if not self._prepare_store():
            return False
        with self._lock:
            try:
                counter = self.store.change_counter()
                control_counter = self.controls_store.change_counter()
                view = self.catalog_view()
            except Exception as exc:  # noqa: BLE001 - keep serving the last good engine
                self.last_error = f"rules refresh failed: {exc}"
                log.warning(self.last_error)
                return False
            if view is None:
                self._engine, self._controls, self._compiled_key = None, None, None
                return False
            key = (counter, control_counter, id(view.catalog))
            if not force and key == self._compiled_key:
                return False
            try:
                rules = [s.rule for s in self.store.list()]
                engine = RuleEngine.compile(rules, view.catalog, view.item_styles)
                controls = CompiledControls(
                    [s.rule for s in self.controls_store.list()], view.catalog, view.item_styles
                )
            except Exception as exc:  # noqa: BLE001
                self.last_error = f"rules compile failed: {exc}"
                log.exception("rules compile failed; keeping the previous engine")
                return False
            self._engine, self._controls, self._compiled_key, self.last_error = (
                engine,
                controls,
                key,
                None,
            )
            log.info(
                "rules compiled: %d active rules, %d controls (store changes %d, %d)",
                len(engine),
                len(controls),
                counter,
                control_counter,
            )
            return True

    def _poll(self) -> None:
        while not self._stop.wait(self.settings.rules_poll_seconds):
            self.refresh()
