"""A minimal FastAPI app carrying only the rules package, for API and browser tests."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from recsys.data.catalog import Catalog
from recsys.rules.mining import Suggestion
from recsys.settings import Settings
from serving.errors import install_error_handlers
from serving.rules import install_rules

KEY = "test-merch-key"


def rules_app(
    settings: Settings,
    catalog: Catalog | None,
    suggestions: Sequence[Suggestion] = (),
    table_prefix: str = "recsys_",
    recommender: Any = None,
    event_log: Any = None,
) -> FastAPI:
    """``install_rules`` on a bare app; the lifespan starts the runtime like ``create_app`` does."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        runtime = app.state.rules_runtime
        runtime.start(lambda: catalog, lambda: recommender, lambda: list(suggestions))
        try:
            yield
        finally:
            runtime.stop()

    app = FastAPI(lifespan=lifespan)
    app.state.settings = settings
    app.state.event_log = event_log
    install_error_handlers(app)  # the service's one 422 shape, as create_app installs it
    install_rules(app, settings, table_prefix=table_prefix)
    return app
