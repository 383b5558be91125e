"""Merchandiser rules in the service: the versioned store, the ``/v1/rules`` API and the
``/admin/rules`` page.

``install_rules(app, settings)`` (called by ``create_app``) adds the routers and returns the
``RulesRuntime``; the app's lifespan calls ``runtime.start(catalog_provider,
recommender_provider)`` and ``runtime.stop()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from recsys.settings import Settings
    from serving.rules.runtime import RulesRuntime


def install_rules(
    app: FastAPI, settings: Settings, *, table_prefix: str = "recsys_"
) -> RulesRuntime:
    """Add the rules API and page to ``app`` and return the (not yet started) runtime.

    The store lives at ``settings.resolved_database_url`` (SQLite file by default).
    ``app.state.rules_runtime`` is set too, so routes elsewhere can read ``engine()``.
    """
    from serving.rules import api, controls_api
    from serving.rules.errors import install_rule_error_handlers
    from serving.rules.page import build_page_router
    from serving.rules.runtime import RulesRuntime
    from serving.rules.store import RuleStore

    if not hasattr(app.state, "settings"):
        app.state.settings = settings
    runtime = RulesRuntime(settings, RuleStore(settings.resolved_database_url, table_prefix))
    install_rule_error_handlers(app)
    app.include_router(api.router)
    app.include_router(controls_api.router)
    app.include_router(build_page_router())
    app.state.rules_runtime = runtime
    return runtime


__all__ = ["install_rules"]
