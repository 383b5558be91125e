"""Issue 13 item 2: YAML from outside (rules import, rules files) is parsed with size, depth and
alias limits before anything else; error bodies stay small; the import does not block the
worker's event loop."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from recsys.rules.model import MAX_ERRORS, RuleValidationError
from recsys.rules.rules_file import DEFAULT_RULES_PATH, dump_rules_yaml, parse_rules_yaml
from recsys.safe_yaml import YamlLimitError, YamlLimits, load_yaml

MERCH = {"Authorization": "Bearer test-merch-key", "Content-Type": "application/yaml"}

# "billion laughs": 9 levels x 9 aliases, ~400 bytes, 9**9 nodes once expanded
BOMB = (
    "a: &a [x, x, x, x, x, x, x, x, x]\n"
    + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    + "version: *i\nrules: []\n"
)


def test_alias_bomb_is_refused_while_composing() -> None:
    assert len(BOMB) < 500
    t0 = time.perf_counter()
    with pytest.raises(YamlLimitError, match="nodes"):
        load_yaml(BOMB)
    assert time.perf_counter() - t0 < 1.0


def test_deep_nesting_is_a_limit_error_not_a_recursion_error() -> None:
    for text in (
        "[" * 5000 + "]" * 5000,
        "a:\n" + "".join("  " * i + "b:\n" for i in range(1, 200)),
    ):
        with pytest.raises(YamlLimitError, match="deeper than"):
            load_yaml(text)


def test_size_and_alias_count_limits() -> None:
    with pytest.raises(YamlLimitError, match="bytes"):
        load_yaml("x: " + "y" * 200, YamlLimits(max_bytes=100))
    many = "a: &a 1\nb: [" + ", ".join(["*a"] * 101) + "]\n"
    with pytest.raises(YamlLimitError, match="aliases"):
        load_yaml(many)


def test_ordinary_yaml_still_loads() -> None:
    assert load_yaml("base: &b {k: 1}\nother: *b\n") == {"base": {"k": 1}, "other": {"k": 1}}
    rules = parse_rules_yaml(DEFAULT_RULES_PATH.read_text())
    assert parse_rules_yaml(dump_rules_yaml(rules)) == rules


def test_rules_parser_reports_limits_as_a_field_error_with_short_messages() -> None:
    with pytest.raises(RuleValidationError) as exc:
        parse_rules_yaml(BOMB)
    assert "nodes" in str(exc.value) and len(str(exc.value)) < 500
    # many bad rules: the report is capped, each message is short
    doc = "version: 1\nrules:\n" + "".join(
        f"- id: r{i}\n  name: n\n  trigger: {{categories: [{'X' * 2000}]}}\n  suggest: {{categories: [y]}}\n"
        for i in range(300)
    )
    with pytest.raises(RuleValidationError) as exc:
        parse_rules_yaml(doc, lambda rule: [])
    errors = exc.value.errors
    assert len(errors) == MAX_ERRORS + 1 and "more problem" in errors[-1].message
    assert max(len(e.message) for e in errors) <= 300


@pytest.mark.slow
def test_import_bomb_and_big_import_do_not_hurt_a_real_worker(server_factory, bundle_dir) -> None:  # noqa: ANN001
    server = server_factory(
        {"RECSYS_MODEL_URI": str(bundle_dir), "RECSYS_MERCHANDISER_KEY": "test-merch-key"}
    ).start()
    url = f"{server.base}/v1/rules/import"
    r = httpx.post(url, content=BOMB, headers=MERCH, timeout=10)
    assert r.status_code == 422 and len(r.content) < 2000, r.text[:300]
    assert "nodes" in r.text
    r = httpx.post(url, content="[" * 20000, headers=MERCH, timeout=10)
    assert r.status_code == 422 and "deeper" in r.text and len(r.content) < 2000

    # ~200 KB of rules naming unknown categories: slow to check, must not stall other requests
    big = "version: 1\nrules:\n" + "".join(
        f"- id: r{i}\n  name: rule {i}\n  trigger: {{categories: [no-such-{i}-a, no-such-{i}-b]}}\n"
        f"  suggest: {{categories: [no-such-{i}-c]}}\n"
        for i in range(2000)
    )
    assert 150_000 < len(big) < 256 * 1024
    worst = [0.0]
    done = threading.Event()

    def probe() -> None:
        with httpx.Client(base_url=server.base, timeout=10) as c:
            while not done.is_set():
                t0 = time.perf_counter()
                c.get("/healthz")
                worst[0] = max(worst[0], time.perf_counter() - t0)
                time.sleep(0.02)

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        r = httpx.post(url, content=big, headers=MERCH, timeout=60)
    finally:
        done.set()
        prober.join(15)
    assert r.status_code == 422 and len(r.content) < 50_000, (r.status_code, len(r.content))
    assert worst[0] < 1.0, f"the event loop was blocked {worst[0]:.2f} s by the import"
    assert server.proc is not None and server.proc.poll() is None
