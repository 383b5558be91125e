"""Merge the generators' lists into one candidate set per query, remembering who proposed what.

This is the merge the service runs (``Recommender.candidates``), offline evaluation and batch
scoring included. The lists are interleaved by *relative rank*: an entry at 0-based position
``p`` of a list of length ``k`` gets the key ``(p + 0.5) / k`` (plus a tiny per-source offset
so that ties go to the earlier source), a row proposed by several sources keeps its best key,
and the ``total`` best keys survive. A source asked for 80 rows and one asked for 20 thus
contribute in proportion to their quotas. Rows that are padding, in the query's basket or
``exclude`` list, or not allowed by the request's filters are dropped.

For every kept candidate the score and the 1-based rank it got from *every* source that listed
it are recorded (NaN where a source did not list it): the ranker's source features. Ranks are
positions in the source's own list, before filtering, so a rank means the same thing whatever
the request's filters were.

Everything is vectorised over the batch: the cost does not grow with Python work per candidate.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from recsys.candidates.base import CandidateGenerator, CandidateQuery
from recsys.candidates.pair_scores import BasketScores
from recsys.candidates.topk import excluded_rows, not_in

SourceOutput = tuple[np.ndarray, np.ndarray]  # (n_queries, k) rows, (n_queries, k) scores
SOURCE_TIE_BREAK = 1e-6  # added per source index to the relative-rank key


@dataclass(frozen=True)
class MergedCandidates:
    """One query's candidates: rows (m,) int64 best first; scores and ranks (m, n_sources)
    float32 with NaN where a source did not propose the row; ``sources`` names the columns."""

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


@dataclass(frozen=True)
class MergedBatch:
    """The candidates of a batch of queries, flat: query ``q`` owns positions
    ``query_ptr[q]:query_ptr[q + 1]`` of ``rows`` (M,), ``scores`` and ``ranks`` (M, n_sources).
    ``basket_scores`` keeps, per source that computed them, each query's whole score row
    (``PairScorer`` sources on small batches), so its score of any candidate is a lookup."""

    query_ptr: np.ndarray
    rows: np.ndarray
    scores: np.ndarray
    ranks: np.ndarray
    sources: tuple[str, ...]
    basket_scores: Mapping[str, Sequence[BasketScores]] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.query_ptr.size - 1)

    def __getitem__(self, q: int) -> MergedCandidates:
        lo, hi = int(self.query_ptr[q]), int(self.query_ptr[q + 1])
        return MergedCandidates(
            self.rows[lo:hi], self.scores[lo:hi], self.ranks[lo:hi], self.sources
        )

    def __iter__(self) -> Iterator[MergedCandidates]:
        return (self[q] for q in range(len(self)))

    def sizes(self) -> np.ndarray:
        """(n_queries,) number of candidates of each query."""
        return np.diff(self.query_ptr)

    @classmethod
    def from_lists(
        cls, merged: Sequence[MergedCandidates], sources: tuple[str, ...]
    ) -> MergedBatch:
        """Concatenate per-query candidates (e.g. after a fallback replaced some of them)."""
        n_src = len(sources)
        ptr = np.zeros(len(merged) + 1, np.int64)
        ptr[1:] = np.cumsum([len(m) for m in merged])
        if not merged:
            return cls(
                ptr,
                np.empty(0, np.int64),
                np.empty((0, n_src), np.float32),
                np.empty((0, n_src), np.float32),
                sources,
            )
        return cls(
            ptr,
            np.concatenate([m.rows for m in merged]).astype(np.int64, copy=False),
            np.concatenate([m.scores for m in merged]).astype(np.float32, copy=False),
            np.concatenate([m.ranks for m in merged]).astype(np.float32, copy=False),
            sources,
        )


class CandidateMerger:
    """Relative-rank interleaving with a total cap, dedupe, exclusions and filters.

    ``quotas`` (source name -> rows asked of it) fixes which sources take part and in which
    order (the order breaks ties); ``total`` caps the candidates per query."""

    def __init__(self, quotas: Mapping[str, int], total: int = 200) -> None:
        self.quotas = dict(quotas)
        self.total = int(total)

    def generate(
        self,
        generators: Mapping[str, CandidateGenerator],
        queries: Sequence[CandidateQuery],
        allowed: np.ndarray | Sequence[np.ndarray | None] | None = None,
    ) -> MergedBatch:
        """Run every generator named in ``quotas`` (missing ones are skipped) and merge."""
        outputs = {
            s: generators[s].generate(queries, q) for s, q in self.quotas.items() if s in generators
        }
        return self.merge(queries, outputs, allowed)

    def merge(
        self,
        queries: Sequence[CandidateQuery],
        outputs: Mapping[str, SourceOutput],
        allowed: np.ndarray | Sequence[np.ndarray | None] | None = None,
    ) -> MergedBatch:
        """Merge per-source (n_queries, k_s) outputs. ``allowed`` is an (n_items,) bool mask for
        every query, one mask (or None = all) per query, or None."""
        unknown = [s for s in outputs if s not in self.quotas]
        if unknown:
            raise ValueError(
                f"CandidateMerger: no quota for sources {unknown} (quotas: {sorted(self.quotas)})"
            )
        sources = tuple(s for s in self.quotas if s in outputs)
        n_q, n_src = len(queries), len(sources)
        for s in sources:
            rows, scores = outputs[s]
            if rows.shape != scores.shape or rows.ndim != 2 or rows.shape[0] != n_q:
                raise ValueError(
                    f"CandidateMerger: source {s!r} must give (n_queries={n_q}, k) rows and scores, "
                    f"got {rows.shape} and {scores.shape}"
                )
        widths = [outputs[s][0].shape[1] for s in sources]
        if not n_q or not sum(widths) or self.total <= 0:
            return MergedBatch.from_lists(
                [
                    MergedCandidates(
                        np.empty(0, np.int64),
                        np.empty((0, n_src), np.float32),
                        np.empty((0, n_src), np.float32),
                        sources,
                    )
                    for _ in range(n_q)
                ],
                sources,
            )

        # every listing of every source, flat and query-major: (query, row, key, source, rank, score)
        rows = np.concatenate(
            [np.asarray(outputs[s][0], np.int64) for s in sources], axis=1
        ).ravel()
        scores = np.concatenate(
            [np.asarray(outputs[s][1], np.float32) for s in sources], axis=1
        ).ravel()
        width = sum(widths)
        pos = np.concatenate([np.arange(w) for w in widths])
        src_of_col = np.repeat(np.arange(n_src), widths)
        key_of_col = (pos + 0.5) / np.repeat(widths, widths) + src_of_col * SOURCE_TIE_BREAK
        query = np.repeat(np.arange(n_q), width)
        col = np.tile(np.arange(width), n_q)

        keep = rows >= 0
        keep &= _allowed(rows, query, allowed, keep)
        n_items = int(rows.max()) + 1 if rows.size else 0
        excl_codes = _exclusion_codes(queries, n_items)
        codes = query * max(n_items, 1) + np.where(keep, rows, 0)
        if excl_codes.size:
            keep &= not_in(codes, excl_codes)
        idx = np.flatnonzero(keep)
        codes, keys = codes[idx], key_of_col[col[idx]]

        # best key per (query, row); then per query: best keys first (ties: smaller row), cap
        by_code = np.lexsort((keys, codes))
        first = np.ones(by_code.size, bool)
        first[1:] = codes[by_code[1:]] != codes[by_code[:-1]]
        u_codes = codes[by_code[first]]
        u_keys = keys[by_code[first]]
        u_query = u_codes // max(n_items, 1)
        u_rows = u_codes - u_query * max(n_items, 1)
        order = np.lexsort((u_rows, u_keys, u_query))
        q_sorted = u_query[order]
        starts = np.searchsorted(q_sorted, np.arange(n_q + 1))
        nth = np.arange(order.size) - starts[q_sorted]
        kept = order[nth < self.total]
        counts = np.minimum(np.diff(starts), self.total)
        ptr = np.zeros(n_q + 1, np.int64)
        ptr[1:] = np.cumsum(counts)

        out_pos = np.full(u_codes.size, -1, np.int64)
        out_pos[kept] = np.arange(kept.size)
        m = kept.size
        out_scores = np.full((m, n_src), np.nan, np.float32)
        out_ranks = np.full((m, n_src), np.nan, np.float32)
        at = out_pos[np.searchsorted(u_codes, codes)]
        hit = np.flatnonzero(at >= 0)[::-1]  # reversed: a source's first listing of a row wins
        e = idx[hit]
        out_scores[at[hit], src_of_col[col[e]]] = scores[e]
        out_ranks[at[hit], src_of_col[col[e]]] = pos[col[e]] + 1.0
        return MergedBatch(ptr, u_rows[kept].astype(np.int64), out_scores, out_ranks, sources)


def _allowed(
    rows: np.ndarray,
    query: np.ndarray,
    allowed: np.ndarray | Sequence[np.ndarray | None] | None,
    valid: np.ndarray,
) -> np.ndarray:
    """(len(rows),) bool: the entry's row passes its query's filter mask."""
    ok = np.ones(rows.size, bool)
    if allowed is None:
        return ok
    if isinstance(allowed, np.ndarray):
        masks: list[np.ndarray | None] = [allowed]
        which = np.zeros(rows.size, np.int64)
    else:
        # queries share few distinct masks (one per distinct filter set): apply each once
        distinct: dict[int, int] = {}
        masks = []
        per_query = np.empty(len(allowed), np.int64)
        for qi, mask in enumerate(allowed):
            j = distinct.setdefault(id(mask), len(masks))
            if j == len(masks):
                masks.append(mask)
            per_query[qi] = j
        which = per_query[query]
    for j, mask in enumerate(masks):
        if mask is None:
            continue
        sel = (which == j) & valid
        r = rows[sel]
        inside = r < mask.size
        res = np.zeros(r.size, bool)
        res[inside] = mask[r[inside]]
        ok[sel] = res
    return ok


def _exclusion_codes(queries: Sequence[CandidateQuery], n_items: int) -> np.ndarray:
    """Sorted ``query * n_items + row`` codes of every query's basket and ``exclude`` rows."""
    parts = []
    for qi, q in enumerate(queries):
        ex = excluded_rows(q)
        ex = ex[(ex >= 0) & (ex < n_items)]
        if ex.size:
            parts.append(qi * max(n_items, 1) + ex)
    return np.concatenate(parts) if parts else np.empty(0, np.int64)
