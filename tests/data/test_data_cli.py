"""`recsys sample-data` and `recsys import-online-retail` through the real command line."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from recsys.cli import build_parser, main
from recsys.data import load_catalog, load_interactions


def test_sample_data_writes_the_world_and_prints_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "world"
    assert (
        main(["sample-data", "--seed", "3", "--orders", "400", "--skus", "600", "--out", str(out)])
        == 0
    )
    printed = capsys.readouterr().out
    for word in ("SKUs", "600", "categories", "orders", "interactions", "tagged", "forgotten"):
        assert word in printed
    catalog = load_catalog(out / "catalog.parquet")
    load_interactions(out / "interactions.parquet", catalog=catalog)
    truth = pd.read_parquet(out / "ground_truth.parquet")
    assert {
        "order_id",
        "user_id",
        "shopper_styles",
        "order_style",
        "project",
        "forgotten_categories",
        "forgotten_skus",
    } <= set(truth.columns)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["skus"] == 600 and summary["project_orders"] == 400


def test_sample_data_rejects_bad_sizes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sample-data", "--skus", "10", "--out", str(tmp_path)]) == 2
    assert "n_skus must be at least" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["sample-data", "--orders", "0", "--out", str(tmp_path)])


def test_import_online_retail_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "retail.csv"
    src.write_text(
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
        "536365,85123A,WHITE HANGING HEART,6,2010-12-01 08:26,2.55,17850,UK\n"
        "536365,POST,POSTAGE,1,2010-12-01 08:26,18,17850,UK\n"
        "C536366,85123A,WHITE HANGING HEART,-6,2010-12-01 09:00,2.55,17850,UK\n"
        "536367,71053,WHITE METAL LANTERN,2,2010-12-01 10:00,3.39,,UK\n"
    )
    out = tmp_path / "out"
    assert main(["import-online-retail", str(src), "--out", str(out)]) == 0
    assert "dropped cancellation" in capsys.readouterr().out
    report = json.loads((out / "import_report.json").read_text())
    assert report["dropped"]["cancellation"] == 1 and report["dropped"]["non_product"] == 1
    assert report["interactions"] == 2 and report["guest_invoices"] == 1
    catalog = load_catalog(out / "catalog.parquet")
    assert len(load_interactions(out / "interactions.parquet", catalog=catalog)) == 2


def test_import_reports_a_contract_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "retail.csv"
    src.write_text("InvoiceNo,StockCode,Quantity\n1,A,1\n")
    assert main(["import-online-retail", str(src), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "retail.csv" in err and "missing column(s) 'Description'" in err


def test_help_texts_explain_the_commands() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert "ground_truth.parquet" in sub.choices["sample-data"].format_help()
    assert "cancellation" in sub.choices["import-online-retail"].format_help().lower()


def test_import_online_retail_reads_the_published_xlsx(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "Online Retail.xlsx"
    pd.DataFrame(
        {
            "InvoiceNo": [536365, 536365, "C536366", 536367],
            "StockCode": ["85123A", "POST", "85123A", 71053],
            "Description": [
                "WHITE HANGING HEART",
                "POSTAGE",
                "WHITE HANGING HEART",
                "WHITE METAL LANTERN",
            ],
            "Quantity": [6, 1, -6, 2],
            "InvoiceDate": pd.to_datetime(
                ["2010-12-01 08:26", "2010-12-01 08:26", "2010-12-01 09:00", "2010-12-01 10:00"]
            ),
            "UnitPrice": [2.55, 18.0, 2.55, 3.39],
            "CustomerID": [17850.0, 17850.0, 17850.0, None],
            "Country": ["United Kingdom"] * 4,
        }
    ).to_excel(src, index=False, engine="openpyxl")
    out = tmp_path / "out"
    assert main(["import-online-retail", str(src), "--out", str(out)]) == 0
    report = json.loads((out / "import_report.json").read_text())
    assert report["dropped"]["cancellation"] == 1 and report["dropped"]["non_product"] == 1
    assert (
        report["interactions"] == 2 and report["customers"] == 1 and report["guest_invoices"] == 1
    )
    assert set(load_catalog(out / "catalog.parquet").frame["sku"]) == {"85123A", "71053"}
