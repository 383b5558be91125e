"""Import the UCI "Online Retail" invoice lines into the catalog and interactions contracts.

Mapping: ``sku`` = StockCode upper-cased (the file writes some codes both ways for the same
product, e.g. 15056bl and 15056BL "EDWARDIAN PARASOL BLACK"; ``lower_case_code_lines`` counts
the lines changed), ``order_id`` = InvoiceNo, ``user_id`` = CustomerID
(empty for guest checkouts: the invoice is their session, nothing links two guest invoices),
``event`` = purchase, ``ts`` = InvoiceDate (the file's UK local time, stored as UTC).
Catalog: ``title`` = the SKU's most frequent Description (ties: alphabetical first),
``price`` = median UnitPrice of its kept lines, ``in_stock`` = True, ``category`` empty,
``styles`` empty, no attributes: the source has none and we do not invent them.

Each input line is dropped for the first of these reasons that applies, and counted:

1. ``missing_key``: no InvoiceNo, StockCode or InvoiceDate.
2. ``cancellation``: InvoiceNo starts with "C" (the reversal of an earlier line, negative
   quantity). The original line is kept: many originals predate the file, so matching them
   would be guesswork.
3. ``non_product``: a StockCode that is not merchandise: postage (POST, DOT, C2), manual
   entries and adjustments (M, D, S, B, CRUK, PADS, bank charges, Amazon fees) and gift
   vouchers (``gift_...``). See ``NON_PRODUCT_CODES``.
4. ``non_positive_quantity``: quantity <= 0 outside a cancellation (stock write-offs such
   as "damaged" or "lost").
5. ``missing_description``: no Description (in this file, unpriced stock corrections).
6. ``non_positive_price``: UnitPrice <= 0 (free samples, corrections).

Repeated lines of the same SKU in one invoice are merged into one row with the quantities
summed (``merged_duplicate_lines`` counts the lines absorbed).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.data.catalog import Catalog, validate_catalog
from recsys.data.errors import DataContractError
from recsys.data.interactions import Interactions, validate_interactions
from recsys.data.tables import read_table, require_columns, to_numeric

REQUIRED_COLUMNS = (
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
)
NON_PRODUCT_CODES = frozenset(
    {
        "POST",
        "DOT",
        "C2",
        "M",
        "D",
        "S",
        "B",
        "CRUK",
        "PADS",
        "BANK CHARGES",
        "AMAZONFEE",
    }
)
"""StockCodes (compared upper-case) that are fees, postage or adjustments, not products."""
GIFT_VOUCHER_PREFIX = "GIFT_"
EXCEL_SUFFIXES = (".xlsx",)
SOURCE_URL = "https://archive.ics.uci.edu/dataset/352/online+retail"
"""UCI Machine Learning Repository, dataset 352 (Chen 2015), CC BY 4.0: ``Online Retail.xlsx``."""
DROP_REASONS = (
    "missing_key",
    "cancellation",
    "non_product",
    "non_positive_quantity",
    "missing_description",
    "non_positive_price",
)


@dataclass(frozen=True)
class ImportReport:
    """What the import kept and dropped, line by line, so the numbers can be checked."""

    source: str
    input_lines: int
    dropped: dict[str, int]
    merged_duplicate_lines: int
    lower_case_code_lines: int
    interactions: int
    invoices: int
    skus: int
    customers: int
    guest_invoices: int
    guest_interactions: int
    first_ts: str | None
    last_ts: str | None
    non_product_codes_seen: dict[str, int] = field(default_factory=dict)
    """Lines dropped as ``non_product``, by upper-cased StockCode."""

    @property
    def kept_lines(self) -> int:
        return self.input_lines - sum(self.dropped.values())

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["kept_lines"] = self.kept_lines
        return out

    def lines(self) -> list[str]:
        """Human-readable report, one fact per line."""
        out = [f"input lines            {self.input_lines:,}"]
        for reason in DROP_REASONS:
            out.append(f"dropped {reason:<22} {self.dropped.get(reason, 0):,}")
        out += [
            f"kept lines             {self.kept_lines:,}",
            f"merged duplicate lines {self.merged_duplicate_lines:,} (same SKU twice in an invoice)",
            f"lower-case codes       {self.lower_case_code_lines:,} lines (upper-cased)",
            f"interactions           {self.interactions:,} purchases in {self.invoices:,} invoices",
            f"SKUs                   {self.skus:,}",
            f"customers              {self.customers:,}; guest invoices {self.guest_invoices:,} "
            f"({self.guest_interactions:,} purchases)",
            f"time span              {self.first_ts} .. {self.last_ts}",
        ]
        return out


def _customer_ids(values: pd.Series) -> pd.Series:
    """CustomerID as text; '17850.0' (a float in a spreadsheet export) becomes '17850'."""
    text = values.astype("string").str.strip()
    text = text.str.replace(r"^(\d+)\.0+$", r"\1", regex=True)
    return text.mask(text == "")


def import_online_retail_frame(
    raw: pd.DataFrame, source: str = "<online retail>"
) -> tuple[Catalog, Interactions, ImportReport]:
    """Convert an Online Retail table (already read) into the contracts; see module doc."""
    require_columns(raw, REQUIRED_COLUMNS, source)
    n = len(raw)
    invoice = raw["InvoiceNo"].astype("string").str.strip()
    code = raw["StockCode"].astype("string").str.strip()
    desc = raw["Description"].astype("string").str.strip()
    qty = to_numeric(raw, "Quantity", source)
    price = to_numeric(raw, "UnitPrice", source)
    ts = pd.to_datetime(raw["InvoiceDate"], errors="coerce", utc=True)
    bad_ts = ts.isna() & raw["InvoiceDate"].notna()
    if bad_ts.any():
        row = int(np.flatnonzero(bad_ts.to_numpy())[0]) + 1
        raise DataContractError(
            source,
            f"not a timestamp: {raw['InvoiceDate'].iloc[row - 1]!r}",
            row=row,
            column="InvoiceDate",
        )
    customer = _customer_ids(raw["CustomerID"])

    upper = code.str.upper()
    reasons = {
        "missing_key": (
            invoice.isna() | (invoice == "") | code.isna() | (code == "") | ts.isna()
        ).to_numpy(bool),
        "cancellation": invoice.str.upper().str.startswith("C").fillna(False).to_numpy(bool),
        "non_product": (upper.isin(NON_PRODUCT_CODES) | upper.str.startswith(GIFT_VOUCHER_PREFIX))
        .fillna(False)
        .to_numpy(bool),
        "non_positive_quantity": (qty.isna() | (qty <= 0)).to_numpy(bool),
        "missing_description": (desc.isna() | (desc == "")).to_numpy(bool),
        "non_positive_price": (price.isna() | (price <= 0)).to_numpy(bool),
    }
    dropped_mask = np.zeros(n, dtype=bool)
    dropped: dict[str, int] = {}
    hits: dict[str, np.ndarray] = {}
    for reason in DROP_REASONS:
        hits[reason] = reasons[reason] & ~dropped_mask
        dropped[reason] = int(hits[reason].sum())
        dropped_mask |= hits[reason]
    seen_codes = upper[hits["non_product"]].value_counts().sort_index()
    seen = {str(k): int(v) for k, v in seen_codes.items()}

    keep = ~dropped_mask
    lower_case = int(((upper != code).fillna(False).to_numpy(bool) & keep).sum())
    lines = pd.DataFrame(
        {
            "order_id": invoice[keep].astype(object).to_numpy(),
            "user_id": customer[keep].astype(object).to_numpy(),
            "sku": upper[keep].astype(object).to_numpy(),
            "quantity": qty[keep].to_numpy(),
            "ts": ts[keep].to_numpy(),
            "description": desc[keep].astype(object).to_numpy(),
            "price": price[keep].to_numpy(float),
        }
    )
    lines["user_id"] = lines["user_id"].where(lines["user_id"].notna(), None)

    counts = (
        lines.groupby(["sku", "description"], sort=True)
        .size()
        .rename("n")
        .reset_index()
        .sort_values(["sku", "n", "description"], ascending=[True, False, True], kind="stable")
    )
    titles = counts.drop_duplicates("sku").set_index("sku")["description"]
    prices = lines.groupby("sku", sort=True)["price"].median()
    catalog_raw = pd.DataFrame(
        {
            "sku": prices.index.to_numpy(),
            "title": titles.reindex(prices.index).to_numpy(),
            "category": None,
            "price": prices.to_numpy(),
            "in_stock": True,
            "styles": [[] for _ in range(len(prices))],
        }
    )
    catalog = validate_catalog(catalog_raw, source)

    merged = (
        lines.groupby(["order_id", "sku"], sort=False, dropna=False)
        .agg(user_id=("user_id", "first"), quantity=("quantity", "sum"), ts=("ts", "min"))
        .reset_index()
    )
    merged["event"] = "purchase"
    merged = merged[["order_id", "user_id", "sku", "quantity", "ts", "event"]]
    interactions = validate_interactions(merged, source, catalog)

    frame = interactions.frame
    guests = frame["user_id"].isna()
    report = ImportReport(
        source=source,
        input_lines=n,
        dropped=dropped,
        merged_duplicate_lines=int(keep.sum()) - len(merged),
        lower_case_code_lines=lower_case,
        interactions=len(frame),
        invoices=int(frame["order_id"].nunique()),
        skus=len(catalog),
        customers=int(frame["user_id"].nunique()),
        guest_invoices=int(frame.loc[guests, "order_id"].nunique()),
        guest_interactions=int(guests.sum()),
        first_ts=str(frame["ts"].min()) if len(frame) else None,
        last_ts=str(frame["ts"].max()) if len(frame) else None,
        non_product_codes_seen=seen,
    )
    return catalog, interactions, report


def read_online_retail(path: str | Path) -> pd.DataFrame:
    """Read the invoice lines: the UCI file as published (``Online Retail.xlsx``, first sheet,
    read with openpyxl) or a Parquet/CSV copy. Codes and ids are read as text so that
    ``85123A`` and ``85123`` (a number in the spreadsheet) are the same kind of value."""
    path = Path(path)
    if not path.exists():
        raise DataContractError(
            str(path), f"file not found; the public file is 'Online Retail.xlsx' from {SOURCE_URL}"
        )
    if path.suffix.lower() not in EXCEL_SUFFIXES:
        return read_table(path)
    try:
        import openpyxl  # noqa: F401 - pandas' reader for .xlsx
    except ImportError as exc:
        raise DataContractError(
            str(path), "reading .xlsx needs openpyxl (pip install 'openpyxl>=3.1,<4')"
        ) from exc
    text = {c: str for c in ("InvoiceNo", "StockCode", "Description", "CustomerID")}
    try:
        return pd.read_excel(path, sheet_name=0, engine="openpyxl", dtype=text)
    except Exception as exc:  # noqa: BLE001 - any parser failure is the file's fault here
        raise DataContractError(str(path), f"cannot be read as an Excel workbook: {exc}") from exc


def import_online_retail(path: str | Path) -> tuple[Catalog, Interactions, ImportReport]:
    """Read an Online Retail file (the published .xlsx, Parquet or CSV) and convert it; see
    the module doc."""
    return import_online_retail_frame(read_online_retail(path), str(path))
