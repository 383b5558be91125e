"""Dense integer rows inside, SKUs at the edges: one ``IdIndex`` saved with every model."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


class IdIndex:
    """Bijection between external string ids and rows ``0..n-1`` (in the order given)."""

    def __init__(self, ids: Iterable[str]) -> None:
        self._ids = np.asarray(list(ids), dtype=object)
        self._rows = {str(v): i for i, v in enumerate(self._ids)}
        if len(self._rows) != len(self._ids):
            raise ValueError("IdIndex: ids must be unique")

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, external_id: object) -> bool:
        return external_id in self._rows

    @property
    def ids(self) -> np.ndarray:
        """All external ids, shape (n,), dtype object."""
        return self._ids

    def row(self, external_id: str) -> int:
        """Row of one id; ``KeyError`` if unknown."""
        return self._rows[external_id]

    def get(self, external_id: str, default: int = -1) -> int:
        return self._rows.get(external_id, default)

    def rows(self, external_ids: Sequence[str]) -> tuple[np.ndarray, list[str]]:
        """Rows of the known ids (int64, input order) and the list of unknown ones."""
        known: list[int] = []
        unknown: list[str] = []
        for e in external_ids:
            r = self._rows.get(e)
            if r is None:
                unknown.append(e)
            else:
                known.append(r)
        return np.asarray(known, dtype=np.int64), unknown

    def external(self, rows: np.ndarray | Sequence[int]) -> list[str]:
        return [str(x) for x in self._ids[np.asarray(rows, dtype=np.int64)]]

    def to_list(self) -> list[str]:
        return [str(x) for x in self._ids]
