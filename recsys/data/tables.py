"""Reading tabular files (CSV or Parquet) and the checks every contract shares."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds

from recsys.data.errors import DataContractError

SUPPORTED_SUFFIXES = (".csv", ".parquet", ".pq")


def read_table(path: str | Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read a CSV or Parquet file, or a folder of Parquet files partitioned hive-style
    (``date=2026-01-31/part-0.parquet``); an unreadable or unknown file is a
    ``DataContractError``. ``columns``: a folder is read lazily, only these columns (all
    of them must exist; the check reads the schema, not the data)."""
    path = Path(path)
    if not path.exists():
        raise DataContractError(str(path), "file not found")
    if path.is_dir():
        return read_parquet_dataset(path, columns)
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - any parser failure is the file's fault here
        raise DataContractError(str(path), f"cannot be read: {exc}") from exc
    raise DataContractError(
        str(path), f"unsupported file type '{suffix}': use one of {', '.join(SUPPORTED_SUFFIXES)}"
    )


def require_columns(frame: pd.DataFrame, columns: Iterable[str], source: str) -> None:
    """Fail naming every missing column at once, and the ones that are there."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataContractError(
            source,
            f"missing column(s) {', '.join(repr(c) for c in missing)}; "
            f"found {', '.join(repr(c) for c in frame.columns)}",
        )


def first_bad_row(mask: pd.Series) -> int:
    """1-based data row number of the first True in ``mask`` (header excluded)."""
    return int(mask.to_numpy().nonzero()[0][0]) + 1


def to_numeric(frame: pd.DataFrame, column: str, source: str) -> pd.Series:
    """Coerce a column to numbers; the first value that is not a number is reported."""
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() & frame[column].notna()
    if bad.any():
        row = first_bad_row(bad)
        raise DataContractError(
            source, f"not a number: {frame[column].iloc[row - 1]!r}", row=row, column=column
        )
    return values


def read_parquet_dataset(path: Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """A folder of Parquet files (hive partitions such as ``date=...`` become columns) read
    through a pyarrow dataset: the schema is checked first, then only ``columns`` are read."""
    try:
        dataset = ds.dataset(path, format="parquet", partitioning="hive")
    except Exception as exc:  # noqa: BLE001 - any reader failure is the folder's fault here
        raise DataContractError(str(path), f"cannot be read as a Parquet dataset: {exc}") from exc
    if not dataset.files:
        raise DataContractError(str(path), "folder holds no .parquet files")
    names = list(dataset.schema.names)
    if columns is not None:
        require_columns(pd.DataFrame(columns=names), columns, str(path))
    try:
        return dataset.to_table(columns=list(columns) if columns is not None else None).to_pandas()
    except Exception as exc:  # noqa: BLE001
        raise DataContractError(str(path), f"cannot be read: {exc}") from exc
