"""``/docs`` (Swagger UI) with its assets served by this service, not a public CDN.

FastAPI's default page loads Swagger UI from jsdelivr: a blank page on an offline or
locked-down network, and third-party script on the admin origin. This is FastAPI's documented
self-hosting recipe with the assets of the ``swagger-ui-bundle`` package. ReDoc (CDN only) is
off.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs/assets"


def install_docs(app: FastAPI) -> None:
    """Mount the Swagger UI assets and the ``/docs`` page (the app needs ``docs_url=None``)."""
    from swagger_ui_bundle import swagger_ui_path

    app.mount(ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        )
