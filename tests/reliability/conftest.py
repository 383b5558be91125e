"""Chaos and abuse tests (issue 13): one regression test per fault an adversarial review found.

The real bundle, settings and uvicorn-process fixtures are the serving tests' own (loaded from
``tests/serving/conftest.py``, not copied), so the faults are exercised against the same
processes the serving suite runs.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "serving_test_fixtures", Path(__file__).parents[1] / "serving" / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
_serving = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_serving)

ADMIN_KEY = _serving.ADMIN_KEY
MERCH_KEY = _serving.MERCH_KEY
Server = _serving.Server
free_port = _serving.free_port
make_settings = _serving.make_settings
server_factory = _serving.server_factory
settings_for = _serving.settings_for
