"""The two style commands through the real ``recsys`` entry point, on the tiny world's files."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from recsys.cli import main

from .conftest import STYLES, TinyWorld


@pytest.fixture()
def files(tiny_world: TinyWorld, tmp_path):
    tiny_world.catalog.save(tmp_path / "catalog.csv")
    coo = tiny_world.orders.tocoo()
    skus = tiny_world.catalog.skus
    pd.DataFrame(
        {
            "order_id": [f"o{r}" for r in coo.row],
            "user_id": "u1",
            "sku": [skus[c] for c in coo.col],
            "quantity": 1,
            "ts": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(coo.row, unit="m"),
            "event": "purchase",
        }
    ).to_csv(tmp_path / "interactions.csv", index=False)
    (tmp_path / "styles.yaml").write_text(yaml.safe_dump({"styles": [{"slug": s} for s in STYLES]}))
    return [
        "--catalog",
        str(tmp_path / "catalog.csv"),
        "--interactions",
        str(tmp_path / "interactions.csv"),
        "--taxonomy",
        str(tmp_path / "styles.yaml"),
    ]


def test_style_report_writes_the_report_and_a_model(files, tmp_path, capsys):
    out = tmp_path / "report.csv"
    assert (
        main(["style-report", *files, "--out", str(out), "--model-out", str(tmp_path / "m")]) == 0
    )
    text = capsys.readouterr().out
    assert "tagged: 21" in text and "style-neutral / no signal: 2" in text
    assert list(pd.read_csv(out).columns) == ["sku", "title", "tagged", "predicted", "confidence"]
    assert (tmp_path / "m" / "style_model.npz").exists()


def test_style_infer_prints_the_reading(files, capsys):
    assert main(["style-infer", *files, "--skus", "boho-tile-1:3, gloves-0,boho-lamp-3"]) == 0
    text = capsys.readouterr().out
    assert "suggest boho" in text and "top: boho" in text


def test_style_infer_names_unknown_skus(files, capsys):
    assert main(["style-infer", *files, "--skus", "nope,gloves-0"]) == 2
    assert "not in the catalog: nope" in capsys.readouterr().err


def test_keywords_file_with_an_unknown_style_is_a_clear_error(files, tmp_path, capsys):
    kw = tmp_path / "kw.yaml"
    kw.write_text(yaml.safe_dump({"keywords": {"gothic": ["skull"]}}))
    assert (
        main(["style-report", *files, "--keywords", str(kw), "--out", str(tmp_path / "r.csv")]) == 2
    )
    assert "unknown style 'gothic'" in capsys.readouterr().err
