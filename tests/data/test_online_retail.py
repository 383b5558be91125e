"""The Online Retail importer: each kind of bad line dropped and counted, on a hand-made frame
with known answers and on the real file."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from recsys.data import DataContractError
from recsys.online_retail import import_online_retail, import_online_retail_frame

REAL_FILE = Path(__file__).parents[2].parent / "shared/data/online_retail_2010-12_2011-09.parquet"
COLUMNS = [
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
]
ROWS = [
    ("536365", "85123A", "WHITE HANGING HEART", 6, "2010-12-01 08:26", 2.55, "17850", "UK"),
    ("536365", "85123A", "WHITE HANGING HEART", 2, "2010-12-01 08:26", 2.55, "17850", "UK"),
    ("536365", "71053", "WHITE METAL LANTERN", 6, "2010-12-01 08:26", 3.39, "17850", "UK"),
    ("536365", "POST", "POSTAGE", 1, "2010-12-01 08:26", 18.0, "17850", "UK"),
    ("C536379", "85123A", "WHITE HANGING HEART", -1, "2010-12-01 09:41", 2.55, "17850", "UK"),
    ("536366", "22633", "HAND WARMER UNION JACK", 6, "2010-12-01 08:28", 1.85, None, "UK"),
    ("536366", "71053", "WHITE METAL LANTERN", 2, "2010-12-01 08:28", 3.59, None, "UK"),
    ("536367", "22633", None, 5, "2010-12-01 08:30", 0.0, None, "UK"),
    ("536368", "22633", "HAND WARMER", 3, "2010-12-01 08:31", 0.0, "13047", "UK"),
    ("536369", "84029E", "damaged", -12, "2010-12-01 08:32", 0.0, None, "UK"),
    (
        "536370",
        "gift_0001_20",
        "Dotcomgiftshop Gift Voucher",
        1,
        "2010-12-01 08:33",
        17.02,
        None,
        "UK",
    ),
    ("536371", "22633", "HAND WARMER UNION JACK", 1, "2010-12-02 10:00", 2.10, "13047.0", "UK"),
    ("536372", "85123a", "WHITE HANGING HEART", 1, "2010-12-02 11:00", 2.95, "13047", "UK"),
]


def _raw() -> pd.DataFrame:
    return pd.DataFrame(ROWS, columns=COLUMNS)


def test_hand_made_frame_counts_every_drop() -> None:
    catalog, events, report = import_online_retail_frame(_raw(), "retail.csv")
    assert report.input_lines == 13
    assert report.dropped == {
        "missing_key": 0,
        "cancellation": 1,
        "non_product": 2,
        "non_positive_quantity": 1,
        "missing_description": 1,
        "non_positive_price": 1,
    }
    assert report.non_product_codes_seen == {"GIFT_0001_20": 1, "POST": 1}
    assert report.kept_lines == 7
    assert report.merged_duplicate_lines == 1
    assert report.lower_case_code_lines == 1  # 85123a is 85123A
    assert (report.interactions, report.invoices, report.skus) == (6, 4, 3)
    assert (report.customers, report.guest_invoices, report.guest_interactions) == (2, 1, 2)

    f = events.frame
    assert set(f["event"]) == {"purchase"}
    heart = f[(f["order_id"] == "536365") & (f["sku"] == "85123A")]
    assert heart["quantity"].tolist() == [8]  # 6 + 2 merged
    assert f.loc[f["order_id"] == "536366", "user_id"].isna().all()  # guest, kept as a session
    assert set(f["user_id"].dropna()) == {"17850", "13047"}  # '13047.0' normalised
    assert str(f["ts"].dtype) == "datetime64[ns, UTC]"

    c = catalog.frame.set_index("sku")
    assert sorted(c.index) == ["22633", "71053", "85123A"]
    assert c.loc["71053", "price"] == pytest.approx((3.39 + 3.59) / 2)  # median
    assert c.loc["85123A", "price"] == pytest.approx(2.55)  # median of 2.55 x2, 2.95
    assert c.loc["22633", "title"] == "HAND WARMER UNION JACK"
    assert c["category"].isna().all() and c["in_stock"].all()
    assert (c["styles"].str.len() == 0).all()
    assert not catalog.has_categories


def test_csv_file_loads_and_report_is_json_ready(tmp_path: Path) -> None:
    path = tmp_path / "retail.csv"
    _raw().to_csv(path, index=False)
    catalog, events, report = import_online_retail(path)
    assert (len(catalog), len(events)) == (3, 6)
    data = report.to_dict()
    assert data["kept_lines"] == 7 and data["source"] == str(path)
    assert any("cancellation" in line for line in report.lines())


def test_missing_column_and_bad_values_are_named(tmp_path: Path) -> None:
    with pytest.raises(DataContractError, match="missing column\\(s\\) 'CustomerID'"):
        import_online_retail_frame(_raw().drop(columns="CustomerID"), "retail.parquet")
    bad = _raw().astype({"Quantity": object})
    bad.loc[2, "Quantity"] = "six"
    with pytest.raises(DataContractError, match="row 3, column 'Quantity': not a number: 'six'"):
        import_online_retail_frame(bad, "retail.csv")
    bad = _raw()
    bad["InvoiceDate"] = bad["InvoiceDate"].astype(object)
    bad.loc[4, "InvoiceDate"] = "someday"
    with pytest.raises(DataContractError, match="row 5, column 'InvoiceDate'"):
        import_online_retail_frame(bad, "retail.csv")
    with pytest.raises(DataContractError, match="file not found"):
        import_online_retail(tmp_path / "nope.parquet")


@pytest.mark.slow  # parses the whole real dataset
def test_real_file_counts() -> None:
    if not REAL_FILE.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{REAL_FILE} is missing in CI")
        pytest.skip(f"{REAL_FILE} not present on this machine")
    catalog, events, report = import_online_retail(REAL_FILE)
    assert report.input_lines == 370_931
    assert report.dropped == {
        "missing_key": 0,
        "cancellation": 6_652,
        "non_product": 1_766,
        "non_positive_quantity": 1_023,
        "missing_description": 463,
        "non_positive_price": 460,
    }
    assert report.kept_lines == 360_567
    assert report.merged_duplicate_lines == 5_511
    assert (report.interactions, report.invoices, report.skus) == (355_056, 14_201, 3_637)
    assert report.lower_case_code_lines == 1_480
    assert report.customers == 3_613 and report.guest_invoices == 1_120
    f = events.frame
    assert not f["order_id"].str.startswith("C").any()
    assert not f["sku"].str.upper().isin(["POST", "DOT", "M", "D", "C2", "BANK CHARGES"]).any()
    assert (f["quantity"] > 0).all() and (catalog.prices > 0).all()
    assert not f.duplicated(["order_id", "sku"]).any()
    assert f["ts"].min() >= pd.Timestamp("2010-12-01", tz="UTC")
    assert f["ts"].max() < pd.Timestamp("2011-10-01", tz="UTC")


def _as_published(rows: list[tuple]) -> pd.DataFrame:
    """The rows typed the way the UCI workbook stores them: numeric invoice numbers and stock
    codes as numbers, dates as dates, CustomerID as a float column with blanks."""

    def number_or_text(value):
        return int(value) if isinstance(value, str) and value.isdigit() else value

    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["InvoiceNo"] = frame["InvoiceNo"].map(number_or_text).astype(object)
    frame["StockCode"] = frame["StockCode"].map(number_or_text).astype(object)
    frame["InvoiceDate"] = pd.to_datetime(frame["InvoiceDate"])
    frame["CustomerID"] = pd.to_numeric(frame["CustomerID"])
    return frame


def test_the_published_xlsx_imports_like_the_csv(tmp_path: Path) -> None:
    xlsx = tmp_path / "Online Retail.xlsx"
    _as_published(ROWS).to_excel(xlsx, sheet_name="Online Retail", index=False, engine="openpyxl")
    csv = tmp_path / "retail.csv"
    _raw().to_csv(csv, index=False)
    cat_x, ev_x, rep_x = import_online_retail(xlsx)
    cat_c, ev_c, rep_c = import_online_retail(csv)
    pd.testing.assert_frame_equal(cat_x.frame, cat_c.frame)
    pd.testing.assert_frame_equal(ev_x.frame, ev_c.frame)
    assert rep_x.dropped == rep_c.dropped and rep_x.interactions == 6
    assert set(ev_x.frame["user_id"].dropna()) == {"17850", "13047"}  # 17850.0 in the sheet
    assert "71053" in set(cat_x.frame["sku"])  # a number in the sheet


def test_a_missing_or_broken_file_names_the_public_source(tmp_path: Path) -> None:
    with pytest.raises(DataContractError, match="archive.ics.uci.edu/dataset/352"):
        import_online_retail(tmp_path / "Online Retail.xlsx")
    broken = tmp_path / "broken.xlsx"
    broken.write_text("not a workbook")
    with pytest.raises(DataContractError, match="cannot be read as an Excel workbook"):
        import_online_retail(broken)
