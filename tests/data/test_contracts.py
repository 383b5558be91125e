"""Every data-contract error a user can hit, with the message they see (file, row, problem)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from recsys.data import DataContractError, load_catalog, load_interactions

CATALOG_CSV = """\
sku,title,category,price,in_stock,color,material,finish,pattern,attributes,styles
T1,Grey porcelain stoneware tile 60x60 concrete look,porcelain-tile,32.5,true,grey,porcelain stoneware,matte,concrete look,"{""size"": ""60x60""}",
W1,Paintable white non-woven wallpaper,wallpaper,28,true,white,non-woven,matte,plain,"{""paintable"": true}",
C1,Coffee table with black metal frame and oak top,coffee-table,220,false,black,metal,raw,,"{""top"": ""oak""}",loft|minimalism
G1,Protective gloves nitrile size L,protective-gloves,5,yes,blue,nitrile,,,,
"""

EVENTS_CSV = """\
order_id,user_id,sku,quantity,ts,event
O1,U1,T1,12,2025-03-01T10:00:00Z,view
O1,U1,T1,12,2025-03-01T10:05:00Z,add_to_cart
O1,U1,T1,12,2025-03-01T10:10:00Z,purchase
O2,,G1,1,2025-03-02T09:00:00Z,purchase
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _replace(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def _catalog_error(tmp_path: Path, text: str) -> str:
    path = _write(tmp_path, "catalog.csv", text)
    with pytest.raises(DataContractError) as info:
        load_catalog(path)
    assert str(path) in str(info.value)
    return str(info.value)


def _events_error(tmp_path: Path, text: str, with_catalog: bool = False) -> str:
    path = _write(tmp_path, "events.csv", text)
    catalog = load_catalog(_write(tmp_path, "catalog.csv", CATALOG_CSV)) if with_catalog else None
    with pytest.raises(DataContractError) as info:
        load_interactions(path, catalog=catalog)
    assert str(path) in str(info.value)
    return str(info.value)


def test_valid_csv_and_parquet_load_the_same(tmp_path: Path) -> None:
    catalog = load_catalog(_write(tmp_path, "catalog.csv", CATALOG_CSV))
    events = load_interactions(_write(tmp_path, "events.csv", EVENTS_CSV), catalog=catalog)
    catalog.save(tmp_path / "catalog.parquet")
    events.save(tmp_path / "events.parquet")
    catalog_pq = load_catalog(tmp_path / "catalog.parquet")
    events_pq = load_interactions(tmp_path / "events.parquet", catalog=catalog_pq)
    pd.testing.assert_frame_equal(catalog.frame, catalog_pq.frame)
    pd.testing.assert_frame_equal(events.frame, events_pq.frame)
    assert catalog.frame["styles"].tolist() == [(), (), ("loft", "minimalism"), ()]
    assert catalog.frame["in_stock"].tolist() == [True, True, False, True]
    assert catalog.attributes_of(1)["paintable"] is True
    assert events.frame["user_id"].tolist() == ["U1", "U1", "U1", None]
    assert events.frame["event"].tolist() == ["view", "add_to_cart", "purchase", "purchase"]
    # a catalog saved as CSV (styles joined with '|') loads back the same
    catalog.save(tmp_path / "again.csv")
    pd.testing.assert_frame_equal(catalog.frame, load_catalog(tmp_path / "again.csv").frame)


def test_missing_column_names_the_column(tmp_path: Path) -> None:
    text = CATALOG_CSV.replace(",price,", ",cost,", 1)
    assert "missing column(s) 'price'" in _catalog_error(tmp_path, text)
    text = EVENTS_CSV.replace(",event\n", ",kind\n", 1)
    assert "missing column(s) 'event'" in _events_error(tmp_path, text)


def test_duplicate_sku(tmp_path: Path) -> None:
    text = _replace(CATALOG_CSV, "W1,Paintable", "T1,Paintable")
    msg = _catalog_error(tmp_path, text)
    assert "row 2, column 'sku': duplicate sku 'T1'" in msg


def test_negative_price(tmp_path: Path) -> None:
    text = _replace(CATALOG_CSV, ",220,", ",-220,")
    assert "row 3, column 'price': negative price -220" in _catalog_error(tmp_path, text)


def test_price_that_is_not_a_number(tmp_path: Path) -> None:
    text = _replace(CATALOG_CSV, ",220,", ",cheap,")
    assert "row 3, column 'price': not a number: 'cheap'" in _catalog_error(tmp_path, text)


def test_unknown_style(tmp_path: Path) -> None:
    text = _replace(CATALOG_CSV, "loft|minimalism", "loft|gothic")
    msg = _catalog_error(tmp_path, text)
    assert "row 3, column 'styles': unknown style 'gothic'; known styles: loft" in msg


def test_non_slug_category(tmp_path: Path) -> None:
    text = _replace(CATALOG_CSV, ",coffee-table,", ",Coffee Table,")
    msg = _catalog_error(tmp_path, text)
    assert "row 3, column 'category': category 'Coffee Table' is not a slug" in msg


def test_bad_in_stock_and_attributes(tmp_path: Path) -> None:
    text = _replace(CATALOG_CSV, ",220,false,", ",220,maybe,")
    assert "row 3, column 'in_stock': expected true/false, got 'maybe'" in _catalog_error(
        tmp_path, text
    )
    text = _replace(CATALOG_CSV, '"{""top"": ""oak""}"', "top=oak")
    assert "row 3, column 'attributes': attributes must be a JSON object" in _catalog_error(
        tmp_path, text
    )


def test_empty_sku(tmp_path: Path) -> None:
    text = _replace(CATALOG_CSV, "G1,Protective", ",Protective")
    assert "row 4, column 'sku': empty sku" in _catalog_error(tmp_path, text)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            ",12,2025-03-01T10:05",
            ",-2,2025-03-01T10:05",
            "row 2, column 'quantity': quantity must be a whole number > 0, got '-2'",
        ),
        (
            ",12,2025-03-01T10:05",
            ",1.5,2025-03-01T10:05",
            "row 2, column 'quantity': quantity must be a whole number > 0, got '1.5'",
        ),
        (
            ",12,2025-03-01T10:05",
            ",two,2025-03-01T10:05",
            "row 2, column 'quantity': not a number: 'two'",
        ),
        (
            "2025-03-01T10:05:00Z",
            "yesterday",
            "row 2, column 'ts': not a timestamp: 'yesterday' (use ISO 8601)",
        ),
        (
            "10:05:00Z,add_to_cart",
            "10:05:00Z,click",
            "row 2, column 'event': unknown event 'click'; use one of view, add_to_cart, purchase",
        ),
        ("O2,,G1", ",,G1", "row 4, column 'order_id': empty order_id"),
    ],
)
def test_malformed_event_rows(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert expected in _events_error(tmp_path, _replace(EVENTS_CSV, old, new))


def test_unknown_sku_against_the_catalog(tmp_path: Path) -> None:
    text = _replace(EVENTS_CSV, "O2,,G1", "O2,,X9")
    msg = _events_error(tmp_path, text, with_catalog=True)
    assert "row 4, column 'sku': sku 'X9' is not in the catalog" in msg
    catalog = load_catalog(tmp_path / "catalog.csv")
    kept = load_interactions(tmp_path / "events.csv", catalog=catalog, unknown_skus="drop")
    assert len(kept) == 3 and "X9" not in set(kept.frame["sku"])


def test_file_not_found_and_wrong_suffix(tmp_path: Path) -> None:
    with pytest.raises(DataContractError, match="missing.parquet: file not found"):
        load_catalog(tmp_path / "missing.parquet")
    path = _write(tmp_path, "catalog.xlsx", CATALOG_CSV)
    with pytest.raises(DataContractError, match=r"unsupported file type '\.xlsx'"):
        load_catalog(path)


def test_unreadable_parquet(tmp_path: Path) -> None:
    path = _write(tmp_path, "catalog.parquet", "this is not parquet")
    with pytest.raises(DataContractError, match="catalog.parquet: cannot be read"):
        load_catalog(path)


def test_missing_price(tmp_path: Path) -> None:
    text = _replace(CATALOG_CSV, ",220,", ",,")
    assert "row 3, column 'price': missing price" in _catalog_error(tmp_path, text)


def test_taxonomy_file_errors(tmp_path: Path) -> None:
    from recsys.data import load_taxonomy

    assert load_taxonomy().slugs[:2] == ("loft", "scandinavian")
    path = tmp_path / "styles.yaml"
    path.write_text("styles:\n  - slug: loft\n  - slug: loft\n")
    with pytest.raises(DataContractError, match="row 2: duplicate style slug 'loft'"):
        load_taxonomy(path)
    path.write_text("styles:\n  - slug: Art Deco\n")
    with pytest.raises(DataContractError, match="must be lower-case words joined by '-'"):
        load_taxonomy(path)
    path.write_text("styles: []\n")
    with pytest.raises(DataContractError, match="expected a non-empty 'styles' list"):
        load_taxonomy(path)
    with pytest.raises(DataContractError, match="taxonomy file not found"):
        load_taxonomy(tmp_path / "none.yaml")


def test_category_tag_share_counts_tagged_items_per_category():
    import pandas as pd

    from recsys.data.catalog import validate_catalog

    cat = validate_catalog(
        pd.DataFrame(
            {
                "sku": ["a", "b", "c", "d", "e"],
                "title": ["t"] * 5,
                "category": ["sofa", "sofa", "grout", "grout", None],
                "price": [1, 1, 1, 1, 1],
                "in_stock": [True] * 5,
                "styles": [["loft"], [], [], [], ["boho"]],
            }
        )
    )
    share = dict(zip(cat.categories, cat.category_tag_share().tolist(), strict=True))
    assert share == {"grout": 0.0, "sofa": 0.5}
