"""The ``/admin/rules`` page: one server-rendered Jinja2 template, a stylesheet and a small
vanilla script (no build step). The page itself holds no data, so it needs no credential; the
script signs in with the merchandiser key and talks to ``/v1/rules`` like any other client.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

HERE = Path(__file__).parent
STATIC = {"rules.js": "text/javascript", "rules.css": "text/css"}


@lru_cache(maxsize=1)
def _env() -> Environment:
    return Environment(
        loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"])
    )


def build_page_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/admin/rules", response_class=HTMLResponse)
    def rules_page() -> HTMLResponse:
        html = (
            _env()
            .get_template("rules.html")
            .render(
                placements=["checkout", "cart", "product"],
                api="/v1/rules",
                controls_api="/v1/controls",
                static="/admin/rules/static",
            )
        )
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    @router.get("/admin/rules/static/{name}")
    def static(name: str) -> Response:
        if name not in STATIC:
            raise HTTPException(404, f"no static file {name!r}")
        return Response(
            (HERE / "static" / name).read_bytes(),
            media_type=STATIC[name],
            headers={"Cache-Control": "no-cache"},
        )

    return router
