"""The interactions contract: one row per event (view, add_to_cart, purchase) of one SKU."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from recsys.data.catalog import Catalog
from recsys.data.errors import DataContractError
from recsys.data.tables import first_bad_row, read_table, require_columns, to_numeric

REQUIRED_COLUMNS = ("order_id", "user_id", "sku", "quantity", "ts", "event")
EVENT_TYPES = ("view", "add_to_cart", "purchase")


@dataclass(frozen=True)
class Interactions:
    """Validated events. ``frame`` columns: order_id (str), user_id (str or None for guests),
    sku (str), quantity (int64 > 0), ts (datetime64[ns, UTC]), event (one of EVENT_TYPES);
    sorted by ts (stable)."""

    frame: pd.DataFrame

    def __len__(self) -> int:
        return len(self.frame)

    def purchases(self) -> pd.DataFrame:
        return self.frame[self.frame["event"] == "purchase"]

    def item_rows(self, catalog: Catalog) -> np.ndarray:
        """Catalog row of every event, shape (n,), int64; -1 where the SKU is not in it."""
        rows = catalog.ids
        return np.fromiter((rows.get(s) for s in self.frame["sku"]), np.int64, len(self.frame))

    def split_at(self, cutoff: pd.Timestamp) -> tuple[Interactions, Interactions]:
        """Events strictly before ``cutoff`` and the rest: the temporal split everyone uses."""
        before = self.frame["ts"] < cutoff
        return Interactions(self.frame[before]), Interactions(self.frame[~before])

    def save(self, path: str | Path) -> None:
        path = Path(path)
        if path.suffix.lower() == ".csv":
            self.frame.to_csv(path, index=False)
        else:
            self.frame.to_parquet(path, index=False)

    def save_partitioned(self, directory: str | Path) -> None:
        """Write Parquet partitioned by UTC day, ``DIR/date=YYYY-MM-DD/part-0-0.parquet``: the
        layout both engines read lazily and a data platform appends a day at a time to.
        Timestamps are stored in microseconds (readable by Spark; training uses seconds)."""
        write_partitioned(self.frame, Path(directory))


def validate_interactions(
    raw: pd.DataFrame,
    source: str = "<interactions>",
    catalog: Catalog | None = None,
    unknown_skus: Literal["error", "drop"] = "error",
) -> Interactions:
    """Check a raw events table against the contract (and SKUs against ``catalog`` if given)."""
    require_columns(raw, REQUIRED_COLUMNS, source)
    n = len(raw)
    frame = pd.DataFrame(index=range(n))
    for col in ("order_id", "sku"):
        vals = raw[col].astype("string").str.strip()
        empty = vals.isna() | (vals == "")
        if empty.any():
            raise DataContractError(source, f"empty {col}", row=first_bad_row(empty), column=col)
        frame[col] = vals.astype(object).to_numpy()
    users = raw["user_id"].astype("string").str.strip()
    known_user = (users.notna() & (users != "")).fillna(False).to_numpy(bool)
    user_values = users.astype(object).to_numpy()
    user_values[~known_user] = None  # guests
    frame["user_id"] = user_values
    qty = to_numeric(raw, "quantity", source)
    bad = qty.isna() | (qty <= 0) | (qty != np.floor(qty.fillna(0)))
    if bad.any():
        row = first_bad_row(bad)
        raise DataContractError(
            source,
            f"quantity must be a whole number > 0, got {raw['quantity'].iloc[row - 1]!r}",
            row=row,
            column="quantity",
        )
    frame["quantity"] = qty.astype(np.int64).to_numpy()
    ts = pd.to_datetime(raw["ts"], errors="coerce", utc=True)
    if ts.isna().any():
        row = first_bad_row(ts.isna())
        raise DataContractError(
            source,
            f"not a timestamp: {raw['ts'].iloc[row - 1]!r} (use ISO 8601)",
            row=row,
            column="ts",
        )
    # .array keeps the UTC dtype; .to_numpy() would box 1M rows into Timestamp objects
    frame["ts"] = ts.dt.as_unit("ns").array
    event = raw["event"].astype("string").str.strip()
    bad_event = ~event.isin(EVENT_TYPES)
    if bad_event.any():
        row = first_bad_row(bad_event.fillna(True))
        raise DataContractError(
            source,
            f"unknown event {raw['event'].iloc[row - 1]!r}; use one of {', '.join(EVENT_TYPES)}",
            row=row,
            column="event",
        )
    frame["event"] = event.astype(object).to_numpy()
    if catalog is not None:
        known = frame["sku"].isin(catalog.ids.to_list())
        if not known.all():
            if unknown_skus == "error":
                row = first_bad_row(~known)
                raise DataContractError(
                    source,
                    f"sku {frame['sku'].iloc[row - 1]!r} is not in the catalog",
                    row=row,
                    column="sku",
                )
            frame = frame[known]
    frame = frame[list(REQUIRED_COLUMNS)].sort_values("ts", kind="stable").reset_index(drop=True)
    return Interactions(frame)


def load_interactions(
    path: str | Path,
    catalog: Catalog | None = None,
    unknown_skus: Literal["error", "drop"] = "error",
) -> Interactions:
    """Load and validate interactions from CSV, Parquet or a partitioned Parquet folder (only
    the contract's columns are read from a folder)."""
    path = Path(path)
    raw = read_table(path, REQUIRED_COLUMNS if path.is_dir() else None)
    return validate_interactions(raw, str(path), catalog, unknown_skus)


PARTITION_COLUMN = "date"


def write_partitioned(frame: pd.DataFrame, directory: Path, part: int = 0) -> None:
    """Append ``frame`` (contract columns, ``ts`` tz-aware) to a date-partitioned Parquet
    folder as ``date=YYYY-MM-DD/part-{part}-0.parquet``, replacing files of the same name
    (several writers, or one writer in chunks, use distinct ``part`` numbers)."""
    ts = pd.to_datetime(frame["ts"], utc=True)
    out = frame[list(REQUIRED_COLUMNS)].copy()
    out["ts"] = ts.dt.as_unit("us")
    out[PARTITION_COLUMN] = ts.dt.strftime("%Y-%m-%d")
    table = pa.Table.from_pandas(out, preserve_index=False)
    ds.write_dataset(
        table,
        directory,
        format="parquet",
        partitioning=ds.partitioning(pa.schema([(PARTITION_COLUMN, pa.string())]), flavor="hive"),
        basename_template=f"part-{part}-{{i}}.parquet",
        existing_data_behavior="overwrite_or_ignore",
        max_rows_per_group=1 << 20,
    )
