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
        # all sources' lists end to end: row, source, 1-based rank after filtering, score
        rows = np.concatenate([outputs[s][0][i] for s in sources]).astype(np.int64, copy=False)
        scores = np.concatenate([outputs[s][1][i] for s in sources]).astype(np.float32, copy=False)
        src = np.repeat(np.arange(len(sources)), [outputs[s][0].shape[1] for s in sources])
        ok = rows >= 0
        if stock is not None:
            ok &= rows < stock.size
            ok[ok] = stock[rows[ok]]
        excl = excluded_rows(query)
        if excl.size:
            ok &= ~np.isin(rows, excl)
        rows, scores, src = rows[ok], scores[ok], src[ok]
        n_src = len(sources)
        starts = np.searchsorted(src, np.arange(n_src + 1))
        rank = np.arange(rows.size) - starts[src] + 1
        length = np.diff(starts)

        uniq, inv = np.unique(rows, return_inverse=True)
        taken = np.zeros(uniq.size, bool)
        chosen: list[np.ndarray] = []
        n_taken = 0
        for j, s in enumerate(sources):
            cand = inv[starts[j] : starts[j + 1]]
            # a source listing a row twice counts it once (first place)
            _, first = np.unique(cand, return_index=True)
            cand = cand[np.sort(first)]
            new = cand[~taken[cand]][: max(min(self.quotas[s], self.total - n_taken), 0)]
            taken[new] = True
            chosen.append(new)
            n_taken += new.size
        room = self.total - n_taken
        if room > 0:
            left = np.flatnonzero(~taken[inv])
            if left.size:
                rel = rank[left] / np.maximum(length[src[left]], 1)
                left = left[np.lexsort((rows[left], rel))]
                _, first = np.unique(inv[left], return_index=True)
                extra = inv[left[np.sort(first)]][:room]
                chosen.append(extra)
        order = np.concatenate(chosen) if chosen else np.empty(0, np.int64)

        m = order.size
        out_scores = np.full((m, n_src), np.nan, np.float32)
        out_ranks = np.full((m, n_src), np.nan, np.float32)
        position = np.full(uniq.size, -1, np.int64)
        position[order] = np.arange(m)
        at = position[inv]
        hit = at >= 0
        # reversed so that a source's first listing of a row wins
        hit_idx = np.flatnonzero(hit)[::-1]
        out_scores[at[hit_idx], src[hit_idx]] = scores[hit_idx]
        out_ranks[at[hit_idx], src[hit_idx]] = rank[hit_idx]
        return MergedCandidates(rows=uniq[order], scores=out_scores, ranks=out_ranks, sources=sources)
