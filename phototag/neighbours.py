"""Search cells for face descriptors: which faces to compare, without comparing every pair. Two-level
k-means cells (about ``CELL_SIZE`` faces each) file every descriptor under its two nearest cells, and
:func:`links` finds each face's nearest neighbours within a distance inside the cells: an approximate
nearest-neighbour search in plain numpy (docs/people.md says why not hnswlib or faiss).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np

CELL_SIZE = 32  # faces per search cell (about)
MIN_CELLS = 4096  # below this many faces every face is compared with every face
NEIGHBOURS = 8  # links kept per face (its nearest within the limit)


def _one_blas_thread():
    """BLAS on one thread: the links' many small products run 5x faster without the threads' hand-offs
    (threadpoolctl; without it, as they are)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def sq_dist(a: np.ndarray, b: np.ndarray, a2=None, b2=None) -> np.ndarray:
    a2 = (a * a).sum(1) if a2 is None else a2
    b2 = (b * b).sum(1) if b2 is None else b2
    d = a2[:, None] + b2[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d, 0.0, out=d)


def _nearest(x: np.ndarray, centres: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """Each row's nearest centre, a chunk of rows at a time (no n x k matrix)."""
    c2 = (centres * centres).sum(1)
    out = np.empty(len(x), np.int64)
    for i in range(0, len(x), chunk):
        out[i:i + chunk] = sq_dist(x[i:i + chunk], centres, b2=c2).argmin(1)
    return out


def _kmeans(x: np.ndarray, k: int, iterations: int, rng: np.random.Generator) -> np.ndarray:
    centres = x[np.sort(rng.choice(len(x), size=k, replace=False))].copy()
    for _ in range(iterations):
        label = sq_dist(x, centres).argmin(1)
        order = np.argsort(label, kind="stable")
        present, starts = np.unique(label[order], return_index=True)
        sums = np.zeros_like(centres)
        sums[present] = np.add.reduceat(x[order], starts, axis=0)
        counts = np.bincount(label, minlength=k)
        moved = counts > 0
        centres[moved] = sums[moved] / counts[moved, None]
    return centres


@dataclass
class Cells:
    """Two-level k-means cells of the descriptors: each face is filed under its two nearest cells
    (``cell1``, ``cell2``); two faces are compared when one's first cell is one of the other's."""

    coarse: np.ndarray  # (C, 128)
    fine: np.ndarray  # (K, 128)
    fine_of: list[np.ndarray]  # per coarse cell, its fine cells' indexes
    near: np.ndarray  # (C, m) each coarse cell's nearest coarse cells (itself first)
    built_for: int  # faces when trained

    @classmethod
    def fit(cls, x: np.ndarray, seed: int = 0) -> tuple[Cells, np.ndarray, np.ndarray]:
        """Cells trained on ``x``, and each of ``x``'s first and second cell (:meth:`assign`, reusing
        the coarse cells the training found). BLAS on its threads: on a million faces the training
        took 3.4 s with two, 4.2 s with one."""
        cells, top = cls._train(x, seed)
        return cells, *cells.assign(x, top=top)

    @classmethod
    def _train(cls, x: np.ndarray, seed: int) -> tuple[Cells, np.ndarray | None]:
        n = len(x)
        rng = np.random.default_rng(seed)
        if n < MIN_CELLS:
            centre = x.mean(0, keepdims=True) if n else np.zeros((1, x.shape[1]), np.float32)
            return cls(centre, centre.copy(), [np.array([0])], np.array([[0]]), n), None
        k = max(1, n // CELL_SIZE)
        c = max(2, int(round(math.sqrt(k))))
        sample = x[np.sort(rng.choice(n, size=min(n, 64 * c), replace=False))]
        coarse = _kmeans(sample, c, 8, rng)
        top = _nearest(x, coarse)
        fine, fine_of, start = [], [], 0
        for g in range(c):
            members = x[top == g]
            kg = max(1, int(round(len(members) / CELL_SIZE)))
            if len(members) <= kg:
                centres = members if len(members) else coarse[g:g + 1]
            else:
                pick = members[np.sort(rng.choice(len(members), size=min(len(members), 12 * kg), replace=False))]
                centres = _kmeans(pick, kg, 4, rng)
            fine.append(centres)
            fine_of.append(np.arange(start, start + len(centres)))
            start += len(centres)
        near = np.argsort(sq_dist(coarse, coarse), axis=1, kind="stable")[:, :3]
        return cls(coarse, np.concatenate(fine).astype(np.float32), fine_of, near, n), top

    def assign(self, x: np.ndarray, chunk: int = 65536, top: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Each descriptor's nearest and second-nearest cell (BLAS on its threads: the products are
        large); ``top``: each one's nearest coarse cell, when known."""
        n = len(x)
        first = np.zeros(n, np.int64)
        second = np.full(n, -1, np.int64)
        if len(self.fine) == 1:  # one cell: every face is compared with every face
            return first, second
        f2 = (self.fine * self.fine).sum(1)
        if top is None:
            top = _nearest(x, self.coarse, chunk)
        for g in np.unique(top):
            rows = np.flatnonzero(top == g)
            cand = np.concatenate([self.fine_of[h] for h in self.near[g]])
            for i in range(0, len(rows), chunk):
                part = rows[i:i + chunk]
                d = sq_dist(x[part], self.fine[cand], b2=f2[cand])
                nearest = d.argmin(1)  # the first of equals, as the second below
                first[part] = cand[nearest]
                if d.shape[1] > 1:
                    d[np.arange(len(part)), nearest] = np.inf
                    second[part] = cand[d.argmin(1)]
                else:
                    second[part] = cand[nearest]
        return first, second

    def to_meta(self) -> dict:
        """The cells as the index's ``people_meta`` keeps them (arrays as little-endian bytes)."""
        owner = np.concatenate([np.full(len(f), g) for g, f in enumerate(self.fine_of)])
        return {"coarse": self.coarse.astype("<f4").tobytes(), "fine": self.fine.astype("<f4").tobytes(),
                "fine_of": owner.astype("<i4").tobytes(), "near": self.near.astype("<i4").tobytes(),
                "near_width": self.near.shape[1], "built_for": self.built_for}

    @classmethod
    def from_meta(cls, meta: dict, dim: int) -> Cells:
        """Cells saved by :meth:`to_meta`, of ``dim``-dimensional descriptors."""
        coarse = np.frombuffer(meta["coarse"], "<f4").reshape(-1, dim).astype(np.float32)
        fine = np.frombuffer(meta["fine"], "<f4").reshape(-1, dim).astype(np.float32)
        owner = np.frombuffer(meta["fine_of"], "<i4")
        fine_of = [np.flatnonzero(owner == g) for g in range(len(coarse))]
        near = np.frombuffer(meta["near"], "<i4").reshape(len(coarse), int(meta["near_width"])).astype(np.int64)
        return cls(coarse, fine, fine_of, near, int(meta["built_for"]))


def links(x: np.ndarray, first: np.ndarray, second: np.ndarray, queries: np.ndarray | None = None, *,
          limit: float, k: int = NEIGHBOURS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (i, j, distance), i < j, of descriptors at most ``limit`` apart, each face's ``k`` nearest,
    found within the cells; with ``queries`` (a boolean mask) only pairs with a query in them."""
    with _one_blas_thread():
        return _links(x, first, second, queries, limit, k)


def _links(x, first, second, queries, limit, k):
    n = len(x)
    # squared norms a chunk at a time: the same sums, without a temporary the size of ``x``
    x2 = np.concatenate([(part * part).sum(1) for part in np.split(x, range(65536, len(x), 65536))])
    by1 = np.argsort(first, kind="stable")
    by2 = np.argsort(second, kind="stable")
    cells1, starts1 = np.unique(first[by1], return_index=True)
    ends1 = np.append(starts1[1:], n)
    if queries is not None:  # only the cells a query is in, by its first or second cell
        wanted = np.isin(cells1, np.concatenate([first[queries], second[queries]]))
        cells1, starts1, ends1 = cells1[wanted], starts1[wanted], ends1[wanted]
    s2 = np.searchsorted(second[by2], cells1, "left")
    e2 = np.searchsorted(second[by2], cells1, "right")
    out_i, out_j, out_d = [], [], []
    lim2 = limit * limit
    for c, a, b, a2, b2 in zip(cells1, starts1, ends1, s2, e2):
        q = by1[a:b]
        base = np.concatenate([q, by2[a2:b2]])
        if queries is None:
            rows, cols, dn = _within(x, x2, q, base, np.arange(len(q)), np.arange(len(base)), lim2)
        else:  # a query's row against every face, another's against the queries (no query: not wanted)
            asked = queries[q]
            rows, cols, dn = (np.concatenate(parts) for parts in zip(
                _within(x, x2, q, base, np.flatnonzero(asked), np.arange(len(base)), lim2),
                _within(x, x2, q, base, np.flatnonzero(~asked), np.flatnonzero(queries[base]), lim2)))
        order = np.lexsort((cols, dn, rows))
        rows, cols, dn = rows[order], cols[order], dn[order]
        rank = np.arange(len(rows)) - np.searchsorted(rows, rows)
        keep = rank < k
        out_i.append(q[rows[keep]])
        out_j.append(base[cols[keep]])
        out_d.append(dn[keep])
    if not out_i:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    i, j, d = np.concatenate(out_i), np.concatenate(out_j), np.sqrt(np.concatenate(out_d))
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    pairs = np.unique(lo * np.int64(n) + hi, return_index=True)[1]
    keep = pairs[lo[pairs] != hi[pairs]]
    return lo[keep], hi[keep], d[keep].astype(np.float32)


def _within(x, x2, q, base, rows, cols, lim2):
    """(row, column, squared distance) of the faces ``q[rows]`` and ``base[cols]`` (rows and columns
    ascending) within ``sqrt(lim2)``, a face never with itself (``base`` starts with ``q``)."""
    d = sq_dist(x[q[rows]], x[base[cols]], x2[q[rows]], x2[base[cols]])
    at = np.minimum(np.searchsorted(cols, rows), max(len(cols) - 1, 0))
    itself = np.flatnonzero(cols[at] == rows) if len(cols) else at[:0]
    d[itself, at[itself]] = np.inf
    r, c = np.nonzero(d <= lim2)
    return rows[r], cols[c], d[r, c]
