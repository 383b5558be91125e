"""The /admin/rules page end to end in real headless Chromium (Debian's package, driven by
Playwright) against a real uvicorn server on 127.0.0.1. Screenshots go to
``test-artifacts/screenshots/``."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

from recsys.settings import Settings
from tests.rules.apps import KEY

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = os.environ.get("RECSYS_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
IN_CI = os.environ.get("CI", "").lower() == "true"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(fitted_bundle, tmp_path_factory):
    """The real service (``create_app``) serving a small fitted bundle, under uvicorn."""
    import uvicorn

    from recsys.rules.mining import load_suggestions
    from serving.app import create_app

    path, world = fitted_bundle
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("rules-browser"),
        model_uri=str(path),
        merchandiser_key=KEY,
        reload_poll_seconds=0,
        rules_poll_seconds=0.5,
    )
    mined = load_suggestions(path / "mined_rules.json")
    assert mined, "the bundle carries mined suggestions"
    app = create_app(settings)
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "uvicorn did not start"
    yield {"url": f"http://127.0.0.1:{port}", "world": world, "mined": mined, "app": app}
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        if IN_CI:
            pytest.fail(f"Chromium not found at {CHROMIUM}: run .ci/install-chromium.sh")
        pytest.skip(f"Chromium not found at {CHROMIUM} (bash .ci/install-chromium.sh)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    p = context.new_page()
    p.set_default_timeout(10_000)
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    yield p
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


def shot(page, name: str, section: str | None = None) -> None:
    """A screenshot of one section (readable) or of the visible page."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    target = page.locator(section) if section else page
    target.screenshot(path=str(SHOTS / f"rules-{name}.png"))


def sign_in(page, url: str) -> None:
    page.goto(url + "/admin/rules")
    page.get_by_label("Merchandiser key").fill(KEY)
    page.get_by_label("Your name").fill("Alice")
    page.get_by_label("Your name").press("Enter")  # keyboard only
    page.locator("#rules-table tbody tr").first.wait_for()


def fill_rule(page, trigger: str, suggest: str) -> None:
    page.get_by_label("Categories (comma-separated)").first.fill(trigger)
    page.locator("#f-suggest-categories").fill(suggest)


def test_merchandiser_journey(server, page) -> None:
    url = server["url"]
    api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}", "X-Author": "bob"})

    # 1. sign in: a wrong key is refused with a message next to the field
    page.goto(url + "/admin/rules")
    shot(page, "01-sign-in")
    page.get_by_label("Merchandiser key").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    page.locator("#err-key").get_by_text("That key is not right.").wait_for()
    sign_in(page, url)

    # every control has an accessible name (label or aria-label), buttons included
    unnamed = page.evaluate("""() => Array.from(document.querySelectorAll('input, select, textarea, button'))
        .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
        .map(e => e.outerHTML)""")
    assert unnamed == []

    # 2. the default rules are there
    table = page.locator("#rules-table")
    for rid in ("paint-essentials", "tile-essentials", "wallpaper-paste", "laminate-underlay"):
        assert table.locator(f"tr[data-rule='{rid}']").count() == 1
    shot(page, "02-rules", "#rules-sec")

    # 3. search
    page.get_by_label("Search rules").fill("tile")
    page.wait_for_function("() => document.querySelectorAll('#rules-table tbody tr').length === 3")
    ids = page.locator("#rules-table tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.rule)"
    )
    assert set(ids) == {"tile-essentials", "brick-tile-essentials", "renovation-waste-bags"}
    page.get_by_label("Search rules").fill("")
    page.wait_for_function("() => document.querySelectorAll('#rules-table tbody tr').length > 3")

    # 4. create "laminate => underlay, skirting boards": inline errors, fixed, saved
    page.get_by_role("button", name="New rule").click()
    page.get_by_label("Id", exact=True).fill("laminate-underlay-skirting")
    page.get_by_label("Name", exact=True).fill("Laminate needs underlay and skirting boards")
    fill_rule(page, "laminate", "underlay, skirting-boards")
    page.get_by_label("Categories it may fill (max)").fill("2")
    page.get_by_role("button", name="Save", exact=True).click()
    trig_err = page.locator("#err-trigger-categories")
    trig_err.get_by_text("did you mean 'laminate-flooring'?").wait_for()
    assert (
        page.locator("#err-suggest-categories").inner_text().strip() == ""
    )  # the sample world has both
    assert page.locator("#f-trigger-categories").get_attribute("aria-invalid") == "true"
    assert page.locator("#editor-errors").is_visible()
    shot(page, "03-inline-errors", "#editor-sec")
    fill_rule(page, "laminate-flooring", "underlay, skirting-boards")
    page.get_by_role("button", name="Save", exact=True).click()
    page.locator("#status").get_by_text("Saved laminate-underlay-skirting (version 1).").wait_for()
    table.locator("tr[data-rule='laminate-underlay-skirting']").wait_for()
    stored = api.get("/v1/rules/laminate-underlay-skirting").json()
    assert stored["updated_by"] == "Alice"
    assert stored["rule"]["suggest"]["categories"] == ["underlay", "skirting-boards"]

    # 5. preview a basket built by searching products
    page.get_by_label("Find products").fill("laminate")
    page.get_by_role("button", name="Search", exact=True).click()
    page.locator("#product-results button").first.click()
    page.get_by_label("Find products").fill("interior wall paint")
    page.get_by_label("Find products").press("Enter")
    page.locator("#product-results button").first.wait_for()
    page.locator("#product-results button").first.click()
    assert page.locator("#basket li").count() == 2
    page.get_by_label("Page", exact=True).select_option("checkout")
    page.get_by_role("button", name="Preview", exact=True).click()
    page.locator("#preview-fired li").first.wait_for()
    fired = page.locator("#preview-fired").inner_text()
    assert "laminate-underlay-skirting" in fired and "paint-essentials" in fired
    accessories = page.locator("#preview-accessories").inner_text()
    assert "often forgotten with wall paint" in accessories and "underlay" in accessories.lower()
    shot(page, "04-preview", "#preview-sec")

    # 6. mined suggestions: uncovered ones by default, filtered, paged; accept the journey's own
    mined = server["mined"]
    sg = next(s for s in mined if s.id == "mined-tile-adhesive-grout")
    assert sg.sentence.startswith("82% of shoppers who bought tile adhesive bought grout")
    listed = page.locator("#suggestions-table tbody tr")
    listed.first.wait_for()
    assert page.locator("#sg-uncovered").is_checked()
    shown = listed.evaluate_all("rows => rows.map(r => r.dataset.suggestion)")
    assert "mined-laminate-flooring-skirting-boards" not in shown  # Alice's new rule covers it
    page.locator("#sg-uncovered").uncheck()
    page.get_by_role("button", name="Filter").click()
    page.locator("#suggestions-count").get_by_text(f"Showing 1–25 of {len(mined)}.").wait_for()
    page.get_by_role("button", name="Next page").click()
    page.locator("#suggestions-count").get_by_text(f"Showing 26–50 of {len(mined)}.").wait_for()
    covered = page.locator(
        "#suggestions-table tr[data-suggestion='mined-laminate-flooring-skirting-boards']"
    )
    page.get_by_label("Category", exact=True).fill("skirting-boards")
    page.get_by_role("button", name="Filter").click()
    covered.get_by_text("covered by laminate-underlay-skirting").wait_for()
    assert covered.get_by_role("button").count() == 0, (
        "no Accept on a covered suggestion (no duplicates)"
    )
    page.locator("#sg-uncovered").check()
    page.get_by_label("Category", exact=True).fill("tile-adhesive")
    page.get_by_label("Sort by").select_option("lift")
    page.get_by_role("button", name="Filter").click()
    row = page.locator(f"#suggestions-table tr[data-suggestion='{sg.id}']")
    row.wait_for()
    assert sg.sentence in row.inner_text()
    lifts = [s.lift for s in mined if "tile-adhesive" in (s.anchor, s.accessory)]
    assert listed.count() <= len(lifts)
    shot(page, "05-suggestions", "#suggestions-sec")
    row.get_by_role("button", name="Accept tile-adhesive => grout").click()
    page.locator("#status").get_by_text(f"Accepted: rule {sg.id} created").wait_for()
    assert api.get(f"/v1/rules/{sg.id}").json()["rule"]["trigger"]["categories"] == [
        "tile-adhesive"
    ]
    row.wait_for(state="detached")  # accepted: no longer an open suggestion

    # 7. edit, then undo from the history
    rule_row = table.locator("tr[data-rule='laminate-underlay-skirting']")
    rule_row.get_by_role("button", name="Edit laminate-underlay-skirting").click()
    page.get_by_label("Priority (higher fires first)").fill("55")
    page.get_by_role("button", name="Save", exact=True).click()
    page.locator("#status").get_by_text("(version 2)").wait_for()
    rule_row.get_by_role("button", name="History of laminate-underlay-skirting").click()
    page.locator("#history-table tbody tr").nth(1).wait_for()
    page.get_by_role("button", name="Roll back laminate-underlay-skirting to version 1").click()
    page.locator("#status").get_by_text("now version 3").wait_for()
    assert api.get("/v1/rules/laminate-underlay-skirting").json()["rule"]["priority"] == 0
    assert page.locator("#history-table tbody tr").first.inner_text().startswith("3")
    shot(page, "06-history", "#history-sec")

    # 8. a stale edit is refused: bob saves first, Alice's save based on the old version gets 409
    rule_row.get_by_role("button", name="Edit laminate-underlay-skirting").click()
    current = api.get("/v1/rules/laminate-underlay-skirting").json()
    bob = {**current["rule"], "name": "Bob's name for it"}
    assert (
        api.put(
            "/v1/rules/laminate-underlay-skirting",
            json=bob,
            headers={"If-Match": f'"{current["version"]}"'},
        ).status_code
        == 200
    )
    page.get_by_label("Name", exact=True).fill("Alice's name for it")
    page.get_by_role("button", name="Save", exact=True).click()
    conflict = page.locator("#conflict")
    conflict.wait_for()
    assert "someone else changed this rule" in conflict.inner_text()
    assert (
        page.get_by_label("Name", exact=True).input_value() == "Alice's name for it"
    )  # her edit is not lost
    shot(page, "07-conflict", "#editor-sec")
    assert (
        api.get("/v1/rules/laminate-underlay-skirting").json()["rule"]["name"]
        == "Bob's name for it"
    )
    conflict.get_by_role("button").click()
    assert page.get_by_label("Name", exact=True).input_value() == "Bob's name for it"

    # 9. disable from the list
    page.get_by_role("button", name="Disable laminate-underlay-skirting").click()
    page.get_by_role("button", name="Enable laminate-underlay-skirting").wait_for()
    assert api.get("/v1/rules/laminate-underlay-skirting").json()["rule"]["enabled"] is False


def test_answer_controls_journey(server, page) -> None:
    """Journey step 7: pin a seasonal item at position 1 on the cart page for two weeks, bury a
    discontinued range, preview both (named in the reasons), see the history, disable."""
    from datetime import UTC, datetime, timedelta

    url = server["url"]
    api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}", "X-Author": "bob"})
    frame = server["world"].catalog.frame
    paint = str(frame.loc[(frame["category"] == "wall-paint") & frame["in_stock"], "sku"].iloc[0])
    basket = {"basket": [{"sku": paint, "quantity": 1}], "page": "cart", "k": 10}
    before = api.post("/v1/rules/preview", json=basket).json()["items"]
    seasonal, buried_cat = before[4], before[0]
    buried_cat = str(frame.loc[frame["sku"] == buried_cat["sku"], "category"].iloc[0])
    assert str(frame.loc[frame["sku"] == seasonal["sku"], "category"].iloc[0]) != buried_cat

    sign_in(page, url)
    page.locator("#controls-empty").wait_for()
    # a pin without a position: the error names the field, nothing is stored
    page.get_by_label("Control id").fill("pin-seasonal")
    page.get_by_label("Control name").fill("Seasonal item first on the cart page")
    page.get_by_label("Action").select_option("pin")
    page.get_by_label("Target SKUs (comma-separated)").fill(seasonal["sku"])
    page.get_by_label("Placements (comma-separated)").fill("cart")
    page.get_by_role("button", name="Save control").click()
    page.locator("#control-errors").get_by_text("a pin needs a position").wait_for()
    assert api.get("/v1/controls/pin-seasonal").status_code == 404
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    page.get_by_label("Pin position (1 = first)").fill("1")
    page.get_by_label("Control valid from (UTC)").fill(now.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Control valid to (UTC)").fill(
        (now + timedelta(days=14)).strftime("%Y-%m-%dT%H:%M")
    )
    # replay it on last week's baskets before publishing (the event store holds 20 paint orders)
    from feature_store.event_log import Event

    buys = server["world"].interactions.purchases()
    orders = list(dict.fromkeys(buys["order_id"]))[-20:]
    lines = buys[buys["order_id"].isin(orders)]
    day = datetime.now(UTC) - timedelta(days=3)
    events = [
        Event(event_id=f"br-{i}", type="purchase", sku=r.sku, ts=day, order_id=f"br-{r.order_id}")
        for i, r in enumerate(lines.itertuples(index=False))
    ]
    events += [
        Event(event_id=f"br-paint-{o}", type="purchase", sku=paint, ts=day, order_id=f"br-{o}")
        for o in orders
    ]
    server["app"].state.event_log.append(events)
    page.get_by_label("Replay on page").select_option("cart")
    page.get_by_role("button", name="Replay this control").click()
    page.locator("#replay-control-share").get_by_text("of 20 answers").wait_for()
    assert (
        page.locator("#replay-summary").inner_text().startswith("20 baskets from the last 7 days")
    )
    assert api.get("/v1/controls/pin-seasonal").status_code == 404, "a replay publishes nothing"
    page.get_by_role("button", name="Save control").click()
    page.locator("#status").get_by_text("Saved control pin-seasonal (version 1).").wait_for()
    stored = api.get("/v1/controls/pin-seasonal").json()
    assert stored["updated_by"] == "Alice" and stored["control"]["placements"] == ["cart"]
    assert stored["control"]["valid_to"].startswith(
        (now + timedelta(days=14)).strftime("%Y-%m-%dT%H:%M")
    )

    # bury a discontinued range: its category, five places down and its score cut
    for label, value in [
        ("Control id", "bury-range"),
        ("Control name", "Discontinued range"),
        ("Target SKUs (comma-separated)", ""),
        ("Target categories (comma-separated)", buried_cat),
        ("Pin position (1 = first)", ""),
        ("Score multiplier", "0.2"),
        ("Rank shift (places)", "5"),
        ("Placements (comma-separated)", "cart, checkout"),
        ("Control valid from (UTC)", ""),
        ("Control valid to (UTC)", ""),
    ]:
        page.get_by_label(label, exact=True).fill(value)
    page.get_by_label("Action").select_option("bury")
    page.get_by_role("button", name="Replay this control").click()
    page.wait_for_function(
        "() => /Changes [1-9]\\d* of 20 answers/.test(document.querySelector('#replay-control-share')?.textContent || '')"
    )
    shot(page, "11-replay", "#replay-sec")
    page.get_by_role("button", name="Save control").click()
    page.locator("#status").get_by_text("Saved control bury-range (version 1).").wait_for()
    page.locator("#controls-table tr[data-control='bury-range']").wait_for()
    shot(page, "08-controls", "#controls-sec")

    # preview on the cart page: the pinned item first, the controls named in the reasons
    page.get_by_label("Find products").fill("interior wall paint")
    page.get_by_label("Find products").press("Enter")
    page.locator("#product-results button").first.click()
    page.get_by_label("Page", exact=True).select_option("cart")
    page.get_by_role("button", name="Preview", exact=True).click()
    first = page.locator("#preview-items li").first
    first.wait_for()
    assert (
        seasonal["title"] in first.inner_text() and "[pinned by pin-seasonal]" in first.inner_text()
    )
    after = api.post("/v1/rules/preview", json=basket).json()["items"]
    cat_of = dict(zip(frame["sku"], frame["category"], strict=True))
    assert after[0]["sku"] == seasonal["sku"] and after[1]["sku"] != before[0]["sku"], (
        "the range went down"
    )
    assert all("bury-range" in i["controls"] for i in after if cat_of[i["sku"]] == buried_cat)
    if any(cat_of[i["sku"]] == buried_cat for i in after):
        assert "buried by bury-range" in page.locator("#preview-items").inner_text()
    shot(page, "09-controls-preview", "#preview-sec")
    served = api.post("/v1/recommendations", json=basket).json()["items"]
    assert served[0]["sku"] == seasonal["sku"] and "pin-seasonal" not in served[0]["reason"]

    # edit through the API (another merchandiser), then the history shows old -> new
    cur = api.get("/v1/controls/bury-range").json()
    assert (
        api.put(
            "/v1/controls/bury-range",
            json={**cur["control"], "shift": 8},
            headers={"If-Match": f'"{cur["version"]}"'},
        ).status_code
        == 200
    )
    page.get_by_role("button", name="History of control bury-range").click()
    page.locator("#control-history-list").get_by_text("shift: 5 → 8").wait_for()
    shot(page, "10-controls-history", "#controls-sec")
    page.get_by_role("button", name="Disable control pin-seasonal").click()
    page.get_by_role("button", name="Enable control pin-seasonal").wait_for()
    off = api.post("/v1/rules/preview", json=basket).json()["items"]
    assert not any("pin-seasonal" in i["controls"] for i in off), "a disabled control does nothing"


def test_rule_and_control_effect_journey(server, page) -> None:
    """Journey step 8: the storefront asks for answers (real API calls that log impressions),
    a shopper adds and buys a shown accessory; the rule's row, its history and the control's
    row show a non-zero effect, and a rule that never fired shows zero."""
    from datetime import UTC, datetime

    url = server["url"]
    api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}", "X-Author": "bob"})
    shop = httpx.Client(base_url=url)  # the storefront: no key
    frame = server["world"].catalog.frame
    paint = str(frame.loc[(frame["category"] == "wall-paint") & frame["in_stock"], "sku"].iloc[1])
    basket = {"basket": [{"sku": paint, "quantity": 2}], "page": "checkout", "k": 6}
    first = shop.post("/v1/recommendations", json={**basket, "session_id": "eff-1"}).json()
    boosted = first["items"][2]["sku"]
    control = {
        "id": "boost-effect",
        "name": "Supplier promotion",
        "action": "boost",
        "multiplier": 3.0,
        "target": {"skus": [boosted]},
        "placements": ["checkout"],
    }
    assert api.post("/v1/controls", json=control).status_code == 201
    answer = shop.post("/v1/recommendations", json={**basket, "session_id": "eff-2"}).json()
    assert answer["accessories"], "the default rules fill checkout accessory slots for paint"
    acc = answer["accessories"][0]
    rule_id, price, qty = acc["rule_id"], 7.5, 2
    item = next(i for i in answer["items"] if i["sku"] == boosted)
    now = datetime.now(UTC).isoformat()
    named = {"session_id": "eff-2", "ts": now, "recommendation_id": answer["recommendation_id"]}
    events = [
        {"event_id": "eff-cart", "type": "add_to_cart", "sku": acc["sku"], **named,
         "position": acc["position"]},
        {"event_id": "eff-buy", "type": "purchase", "sku": acc["sku"], **named,
         "position": acc["position"], "quantity": qty, "price": price, "order_id": "eff-o1"},
        {"event_id": "eff-buy-item", "type": "purchase", "sku": boosted, **named,
         "position": item["position"], "quantity": 1, "price": 20.0, "order_id": "eff-o1"},
    ]  # fmt: skip
    r = shop.post("/v1/events", json={"events": events})
    assert r.status_code in (200, 202), r.text
    never = "wallpaper-paste"  # triggers on wallpaper: no answer of this module had any
    assert never != rule_id

    sign_in(page, url)
    page.get_by_label("Effect over").select_option("1")
    row = page.locator(f"#rules-table tr[data-rule='{rule_id}']")
    revenue = f"{price * qty:.2f}"
    row.locator("[data-effect='revenue']").get_by_text(revenue, exact=True).wait_for()
    shown = int(row.locator("[data-effect='impressions']").inner_text())
    assert shown >= 1
    rate = row.locator("[data-effect='attach-rate']").inner_text()
    assert rate.endswith("%") and float(rate[:-1]) > 0
    idle = page.locator(f"#rules-table tr[data-rule='{never}']")
    assert idle.locator("[data-effect='impressions']").inner_text() == "0"
    assert idle.locator("[data-effect='revenue']").inner_text() == "0.00"
    assert idle.locator("[data-effect='attach-rate']").inner_text() == "–"
    # the page shows what the API computes
    eff = api.get(f"/v1/rules/{rule_id}/effect", params={"days": 1}).json()
    assert eff["impressions"] == shown and eff["bought"] >= 1 and eff["added"] >= 1
    assert api.get(f"/v1/rules/{never}/effect", params={"days": 1}).json()["baskets"] == 0
    shot(page, "12-effect", "#rules-sec")

    row.get_by_role("button", name=f"History of {rule_id}").click()
    sentence = page.locator("#history-effect")
    sentence.get_by_text(f"revenue {revenue}.").wait_for()
    assert sentence.inner_text().startswith("Over the last 1 day: shown ")
    shot(page, "13-effect-history", "#history-sec")

    ctl = page.locator("#controls-table tr[data-control='boost-effect']")
    ctl.locator("[data-effect='revenue']").get_by_text("20.00", exact=True).wait_for()
    assert int(ctl.locator("[data-effect='impressions']").inner_text()) >= 1
    page.get_by_role("button", name="History of control boost-effect").click()
    page.locator("#control-effect").get_by_text("revenue 20.00.").wait_for()
    shot(page, "14-controls-effect", "#controls-sec")
    # a wider window keeps the same figures (nothing older exists)
    page.get_by_label("Effect over").select_option("30")
    page.locator("#status").get_by_text("Effect shown over the last 30 days.").wait_for()
    assert row.locator("[data-effect='revenue']").inner_text() == revenue
