"""The /admin/experiments page in real headless Chromium (Playwright) against a real uvicorn
process: sign in, start a draft, read the report."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from serving.schemas import EXAMPLE_TILE, EXAMPLE_WALLPAPER

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CHROMIUM = os.environ.get("RECSYS_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
]
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
ADMIN = {"Authorization": "Bearer test-admin-key", "X-Author": "ana"}
EXP = {
    "name": "page-test",
    "placements": ["cart"],
    "variants": [
        {"name": "full", "share": 0.5},
        {"name": "no-ranker", "share": 0.5, "knobs": {"ranker": False}},
    ],
}


def test_sign_in_start_and_read_the_report(server_factory, bundle_dir) -> None:  # noqa: ANN001
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"Chromium not found at {CHROMIUM}: run .ci/install-chromium.sh")
        pytest.skip(f"Chromium not found at {CHROMIUM}")
    from playwright.sync_api import expect, sync_playwright

    server = server_factory({"RECSYS_MODEL_URI": str(bundle_dir)}).start()
    with httpx.Client(base_url=server.base, timeout=10) as c:
        c.post("/v1/experiments", json=EXP, headers=ADMIN).raise_for_status()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{server.base}/admin/experiments")
            page.fill("#key", "wrong")
            page.click("#signin-form button[type=submit]")
            expect(page.locator("#status")).to_contain_text("wrong admin key")
            page.fill("#key", "test-admin-key")
            page.fill("#author", "ana")
            page.click("#signin-form button[type=submit]")
            row = page.locator("#experiments tbody tr[data-name='page-test']")
            expect(row).to_contain_text("draft")
            expect(row).to_contain_text("full (50%), no-ranker (50%)")
            row.get_by_role("button", name="Start").click()
            expect(row).to_contain_text("running")
            assert (
                c.get("/v1/experiments/page-test/history", headers=ADMIN).json()[0]["author"]
                == "ana"
            )

            ts = datetime.now(UTC).isoformat()
            for i in range(30):  # shoppers, through the API like a storefront
                body = c.post(
                    "/v1/recommendations",
                    json={
                        "basket": [{"sku": EXAMPLE_TILE}, {"sku": EXAMPLE_WALLPAPER}],
                        "session_id": f"p{i}",
                        "k": 4,
                    },
                ).json()
                if i % 3 == 0:
                    c.post(
                        "/v1/events",
                        json={
                            "events": [
                                {
                                    "event_id": f"e{i}",
                                    "type": "view",
                                    "sku": body["items"][0]["sku"],
                                    "session_id": f"p{i}",
                                    "ts": ts,
                                    "recommendation_id": body["recommendation_id"],
                                    "position": 1,
                                }
                            ]
                        },
                    ).raise_for_status()
            row.get_by_role("button", name="Report").click()
            expect(page.locator("#srm")).to_contain_text("Split as configured")
            expect(page.locator("#metrics tbody tr")).to_have_count(2)
            expect(page.locator("#diffs tbody")).to_contain_text("Click-through")
            expect(page.locator("#needed")).to_contain_text("still needed")
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / "experiments-report.png"), full_page=True)
            row.get_by_role("button", name="Stop").click()
            expect(row).to_contain_text("stopped")
            browser.close()
