"""Merge the generators' lists into one candidate set per query, remembering who proposed what.

Each source first contributes up to its quota of new rows (in the order the quotas are given),
then the remaining places up to ``total`` go to the best leftovers of all sources, ordered by
their relative rank (rank / list length). Basket, excluded and out-of-stock rows are dropped.
For every kept candidate the score and 1-based rank it got from *every* source that listed it
are recorded (NaN where a source did not list it) - the ranker's source features.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from recsys.candidates.base import CandidateGenerator, CandidateQuery
from recsys.candidates.topk import excluded_rows

SourceOutput = tuple[np.ndarray, np.ndarray]  # (n_queries, k) rows, (n_queries, k) scores


@dataclass(frozen=True)
class MergedCandidates:
    """One query's candidates: rows (m,) int64; scores and ranks (m, n_sources) float32 with
    NaN where a source did not propose the row; ``sources`` names the columns."""

    rows: np.ndarray
    scores: np.ndarray
    ranks: np.ndarray
    sources: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.rows.size)

    def produced_by(self) -> list[tuple[str, ...]]:
        """For each candidate, the names of the sources that proposed it."""
        listed = ~np.isnan(self.scores)
        return [tuple(s for s, on in zip(self.sources, row, strict=True) if on) for row in listed]


class CandidateMerger:
    """Quotas per source, a total cap, dedupe, exclusions and stock filter."""

    def __init__(self, quotas: Mapping[str, int] | None = None, total: int = 200, overfetch: float = 1.5) -> None:
        self.quotas = dict(quotas) if quotas is not None else {
            "item_knn": 80, "co_purchase": 40, "cf": 40, "style": 30, "popular": 10,
        }
        self.total = total
        self.overfetch = overfetch

    def fetch_sizes(self) -> dict[str, int]:
        """How many rows to ask each source for: its quota times ``overfetch`` (dupes are lost)."""
        return {s: int(np.ceil(q * self.overfetch)) for s, q in self.quotas.items()}

    def generate(
        self,
        generators: Mapping[str, CandidateGenerator],
        queries: Sequence[CandidateQuery],
        in_stock: np.ndarray | None = None,
    ) -> list[MergedCandidates]:
        """Run every generator named in ``quotas`` (missing ones are skipped) and merge."""
        sizes = self.fetch_sizes()
        outputs = {s: generators[s].generate(queries, sizes[s]) for s in self.quotas if s in generators}
        return self.merge(queries, outputs, in_stock)

    def merge(
        self,
        queries: Sequence[CandidateQuery],
        outputs: Mapping[str, SourceOutput],
        in_stock: np.ndarray | None = None,
    ) -> list[MergedCandidates]:
        """Merge per-source (n_queries, k_s) outputs into one ``MergedCandidates`` per query."""
        unknown = [s for s in outputs if s not in self.quotas]
        if unknown:
            raise ValueError(f"CandidateMerger: no quota for sources {unknown} (quotas: {sorted(self.quotas)})")
        sources = tuple(s for s in self.quotas if s in outputs)
        for s in sources:
            rows, scores = outputs[s]
            if rows.shape != scores.shape or rows.ndim != 2 or rows.shape[0] != len(queries):
                raise ValueError(
                    f"CandidateMerger: source {s!r} must give (n_queries={len(queries)}, k) rows and scores, "
                    f"got {rows.shape} and {scores.shape}"
                )
        stock = None if in_stock is None else np.asarray(in_stock, dtype=bool)
        return [self._merge_one(q, i, sources, outputs, stock) for i, q in enumerate(queries)]

    def _merge_one(
        self,
        query: CandidateQuery,
        i: int,
        sources: tuple[str, ...],
        outputs: Mapping[str, SourceOutput],
        stock: np.ndarray | None,
    ) -> MergedCandidates:
        excl = excluded_rows(query)
        lists: list[tuple[np.ndarray, np.ndarray]] = []
        for s in sources:
            rows, scores = outputs[s][0][i], outputs[s][1][i]
            ok = rows >= 0
            if stock is not None:
                ok &= stock[np.clip(rows, 0, stock.size - 1)] & (rows < stock.size)
            if excl.size:
                ok &= ~np.isin(rows, excl)
            # first occurrence of each row only (generators should not repeat, but be safe)
            rows, scores = rows[ok], scores[ok]
            _, first = np.unique(rows, return_index=True)
            first.sort()
            lists.append((rows[first], scores[first].astype(np.float32)))

        chosen: list[np.ndarray] = []
        taken = np.empty(0, np.int64)
        for (rows, _), s in zip(lists, sources, strict=True):
            new = rows[~np.isin(rows, taken)][: self.quotas[s]]
            room = self.total - taken.size
            new = new[: max(room, 0)]
            chosen.append(new)
            taken = np.concatenate([taken, new])
        room = self.total - taken.size
        if room > 0:
            left_rows, left_key = [], []
            for rows, _ in lists:
                rel = (np.arange(rows.size) + 1) / max(rows.size, 1)
                fresh = ~np.isin(rows, taken)
                left_rows.append(rows[fresh])
                left_key.append(rel[fresh])
            lr = np.concatenate(left_rows) if left_rows else np.empty(0, np.int64)
            lk = np.concatenate(left_key) if left_key else np.empty(0)
            order = np.lexsort((lr, lk))
            lr = lr[order]
            _, first = np.unique(lr, return_index=True)
            extra = lr[np.sort(first)][:room]
            taken = np.concatenate([taken, extra])

        m, n_src = taken.size, len(sources)
        scores = np.full((m, n_src), np.nan, np.float32)
        ranks = np.full((m, n_src), np.nan, np.float32)
        if m:
            order = np.argsort(taken)
            sorted_taken = taken[order]
            for j, (rows, sc) in enumerate(lists):
                pos = np.searchsorted(sorted_taken, rows)
                pos = np.clip(pos, 0, m - 1)
                hit = sorted_taken[pos] == rows
                target = order[pos[hit]]
                scores[target, j] = sc[hit]
                ranks[target, j] = np.flatnonzero(hit) + 1
        return MergedCandidates(rows=taken.astype(np.int64), scores=scores, ranks=ranks, sources=sources)
