"""Who looks like whom: cosine neighbours and near-identical pairs of embeddings.

Every neighbour question of an audit (near copies, the kNN label vote, cross-class copies and
train/test leakage) goes through :func:`neighbour_graph`: the k nearest other rows of every
row, by centred cosine. Below ``EXACT_BELOW`` rows it is exact (a chunked matrix product);
above, an HNSW graph (faiss, MIT licence) answers, which costs about n log n instead of n².
bench/scale_audit.py measures both: on 100k real-shaped 1024-d embeddings HNSW (M=32,
efSearch=128, built on 256 principal components, its 48 candidates per row re-scored by their
exact cosine) finds >= 0.99 of the exact 10 nearest neighbours and of the pairs above the
near-copy threshold; exact search of the whole graph overtakes HNSW
between 16k and 32k rows on these 2 cores (``EXACT_BELOW`` = 20k).

MobileNet's pooled features are all non-negative, so raw cosines of unrelated photos sit
around 0.46 and crowd the top of the scale. We subtract a centre (the mean embedding of the
audited data) first; on the 600 flower photos, edited copies (re-saved at JPEG quality 40,
half size, 90 % crop, +20 % brightness, mirrored) then score 0.68-1.0 against their source
(95.7 % at 0.80 or more) while the closest two distinct photos score 0.78. Hence
``NEAR_DUPLICATE = 0.80`` (measured by bench/audit_quality.py).

Rows are read in chunks, so memory stays O(chunk x n) for exact search and O(chunk + index)
for HNSW, however large n is; the vectors may be a read-only memory map.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NEAR_DUPLICATE = 0.80

#: Backbones whose embedding space puts distinct pictures closer than 0.80, each calibrated
#: the same way (distinct pictures against edited copies; bench/near_copy_calibration.py and
#: bench/colour_histogram.py). Exact copies are found by content hash whatever the threshold.
#: Other backbones keep NEAR_DUPLICATE until measured.
#:
#: - mobilenet_0.25_224, on the 600 shared photos: the closest distinct photos reach 0.883 (two
#:   dandelion clocks; eight distinct pairs are at 0.80 or more), so 0.89 links none of them and
#:   still finds 85 % of the edited copies (97 % at 0.85).
#: - colour_histogram (the offline demo's featuriser), on generated flowers: two different
#:   pictures of one class reach 0.88-0.90, which 0.80 calls copies (12 false findings on 600
#:   distinct pictures). Re-saved, resized, cropped and mirrored copies score 0.94-1.0
#:   (medians), so 0.92 still finds them; brightened copies (0.85) it misses.
NEAR_DUPLICATE_BY_ARCHITECTURE = {"mobilenet_0.25_224": 0.89, "colour_histogram": 0.92}

#: Below this many rows exact search is faster than building an HNSW graph (measured by
#: bench/scale_audit.py --crossover on 1024-d rows, 2 cores), so the audit stays exact there.
EXACT_BELOW = 20_000
#: Neighbours kept per row: the label vote's k plus room for the row's own copies, which the
#: vote skips, and for the near-copy pairs, which are read off the same graph.
GRAPH_K = 24
#: HNSW settings: links per node, and the candidate lists when building and searching.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128
#: the graph is built on this many principal components of the centred unit rows...
HNSW_DIMS = 256
#: ...and this many candidates per row are re-scored by their exact full-space cosine
HNSW_CANDIDATES = 48

_CHUNK = 2048
_ANN_CHUNK = 65_536


def near_duplicate_threshold(architecture: str | None) -> float:
    """The calibrated centred-cosine threshold for near copies in this backbone's space."""
    return NEAR_DUPLICATE_BY_ARCHITECTURE.get(architecture or "", NEAR_DUPLICATE)


def column_mean(vectors: np.ndarray, *, chunk: int = _ANN_CHUNK) -> np.ndarray:
    """The mean row, summed in float64 one chunk at a time (no copy of the whole matrix)."""
    n, d = vectors.shape
    total = np.zeros(d, np.float64)
    for start in range(0, n, chunk):
        total += np.asarray(vectors[start : start + chunk], dtype=np.float64).sum(axis=0)
    return (total / max(n, 1)).astype(np.float32)


def unit_rows(vectors: np.ndarray, *, center: np.ndarray | None = None) -> np.ndarray:
    """Rows minus ``center`` (the row mean when None), scaled to unit length."""
    x = np.asarray(vectors, dtype=np.float32)
    c = x.mean(axis=0) if center is None else np.asarray(center, dtype=np.float32)
    x = x - c
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


@dataclass(frozen=True)
class NeighbourGraph:
    """The k nearest other rows of each row by centred cosine, most similar first.

    indices (n, k) int64 with -1 where a row has fewer neighbours; similarities (n, k)
    float32, -inf there. ``method`` is "exact" or "hnsw"."""

    indices: np.ndarray
    similarities: np.ndarray
    method: str
    #: exact search also keeps every pair at or above this similarity (all of them, not only
    #: the k nearest), as (i, j, similarity) rows i < j
    all_pairs: np.ndarray | None = None
    all_pairs_at: float | None = None

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def k(self) -> int:
        return self.indices.shape[1]

    def pairs(self, threshold: float) -> np.ndarray:
        """Pairs i < j with similarity >= threshold, as (i, j, similarity) rows sorted by
        (i, j), each pair once: every such pair when the exact scan kept them at this
        threshold or lower, else the pairs among each row's k nearest neighbours."""
        if self.all_pairs is not None and threshold >= self.all_pairs_at:
            return self.all_pairs[self.all_pairs[:, 2] >= threshold]
        rows, cols = np.nonzero(self.similarities >= threshold)
        j = self.indices[rows, cols]
        i = rows.astype(np.int64)
        keep = j >= 0
        i, j, s = i[keep], j[keep], self.similarities[rows, cols][keep]
        lo, hi = np.minimum(i, j), np.maximum(i, j)
        keys = lo * max(len(self), 1) + hi
        _, first = np.unique(keys, return_index=True)
        lo, hi, s = lo[first], hi[first], s[first]
        return np.stack([lo, hi, s.astype(np.float64)], axis=1) if len(lo) else np.zeros((0, 3))

    def excluding_groups(
        self, k: int, groups: np.ndarray | None, vectors: np.ndarray, center: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The first k neighbours of each row outside its own group (copies of one picture do
        not vouch for each other). Rows whose kept neighbours run short (a picture with many
        copies) are searched again, exactly, among all rows."""
        n = len(self)
        k = min(k, n - 1)
        if k <= 0:
            return np.zeros((n, 0), np.int64), np.zeros((n, 0))
        idx, sim = self.indices, self.similarities
        valid = idx >= 0
        if groups is not None:
            g = np.asarray(groups)
            valid &= g[np.where(valid, idx, 0)] != g[:, None]
        # stable: keep the graph's order among the valid neighbours
        order = np.argsort(~valid, axis=1, kind="stable")[:, :k]
        out_idx = np.take_along_axis(idx, order, 1).astype(np.int64)
        out_sim = np.take_along_axis(sim, order, 1).astype(np.float64)
        short = np.flatnonzero(np.take_along_axis(valid, order, 1).sum(axis=1) < k)
        if len(short):
            fix_idx, fix_sim = exact_neighbours(
                vectors, k, rows=short, groups=groups, center=center
            )
            out_idx[short], out_sim[short] = fix_idx, fix_sim
        return out_idx, out_sim


def exact_neighbours(
    vectors: np.ndarray,
    k: int,
    *,
    rows: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    center: np.ndarray | None = None,
    chunk: int = _CHUNK,
    pairs: list | None = None,
    pairs_at: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest other rows of ``rows`` (default all) by exact centred cosine, skipping
    rows of the same ``groups`` id. O(len(rows) x n) work; memory O(chunk x n) up to
    ``_ANN_CHUNK`` rows, and O(chunk x _ANN_CHUNK) past it (columns are read in blocks)."""
    c = column_mean(vectors) if center is None else np.asarray(center, np.float32)
    n = len(vectors)
    rows = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
    k = min(k, n - 1)
    if k <= 0:
        return np.zeros((len(rows), 0), np.int64), np.zeros((len(rows), 0))
    g = None if groups is None else np.asarray(groups)
    whole = _unit_all(vectors, c) if n <= _ANN_CHUNK else None
    width = n if whole is not None else _ANN_CHUNK
    idx = np.empty((len(rows), k), dtype=np.int64)
    sim = np.empty((len(rows), k), dtype=np.float64)
    for start in range(0, len(rows), chunk):
        these = rows[start : start + chunk]
        q = whole[these] if whole is not None else unit_rows(vectors[these], center=c)
        best_i = np.zeros((len(these), 0), np.int64)
        best_s = np.zeros((len(these), 0), np.float32)
        for col in range(0, n, width):
            cols = whole if whole is not None else unit_rows(vectors[col : col + width], center=c)
            block = q @ cols.T
            if pairs is not None:  # every pair i < j at or above pairs_at, from the same pass
                r, cc = np.nonzero(block >= pairs_at)
                i, j = these[r], cc + col
                keep = i < j
                pairs.append(np.stack([i[keep], j[keep], block[r[keep], cc[keep]]], 1))
            hit = (these >= col) & (these < col + len(cols))
            block[np.flatnonzero(hit), these[hit] - col] = -np.inf
            if g is not None:
                block[g[these][:, None] == g[None, col : col + len(cols)]] = -np.inf
            kk = min(k, block.shape[1])
            part = np.argpartition(-block, kk - 1, axis=1)[:, :kk]
            best_i = np.concatenate([best_i, part + col], axis=1)
            best_s = np.concatenate([best_s, np.take_along_axis(block, part, 1)], axis=1)
            if best_i.shape[1] > k:
                part = np.argpartition(-best_s, k - 1, axis=1)[:, :k]
                best_i = np.take_along_axis(best_i, part, 1)
                best_s = np.take_along_axis(best_s, part, 1)
        order = np.argsort(-best_s, axis=1, kind="stable")
        idx[start : start + len(these)] = np.take_along_axis(best_i, order, 1)
        sim[start : start + len(these)] = np.take_along_axis(best_s, order, 1)
    return idx, sim


def _unit_all(vectors: np.ndarray, center: np.ndarray) -> np.ndarray:
    """Centred unit rows of the whole matrix as float32, built one chunk at a time."""
    n = len(vectors)
    u = np.empty((n, vectors.shape[1]), np.float32)
    for start in range(0, n, _ANN_CHUNK):
        u[start : start + _ANN_CHUNK] = unit_rows(
            vectors[start : start + _ANN_CHUNK], center=center
        )
    return u


def _reduction(vectors: np.ndarray, center: np.ndarray, dims: int, seed: int) -> np.ndarray:
    """(d, dims) principal directions of the centred unit rows, from a seeded sample."""
    n = len(vectors)
    rows = np.sort(np.random.default_rng(seed).choice(n, min(n, 8_000), replace=False))
    u = unit_rows(vectors[rows], center=center)
    _, _, vt = np.linalg.svd(u, full_matrices=False)
    return np.ascontiguousarray(vt[:dims].T.astype(np.float32))


def _hnsw_graph(
    vectors: np.ndarray, k: int, center: np.ndarray, *, threads: int, ef_search: int, seed: int
) -> NeighbourGraph:
    """HNSW over the rows' first HNSW_DIMS principal components, then every candidate
    re-scored by its exact centred cosine in the full space: the graph is cheap to build and
    the similarities (and so every threshold) are exact."""
    import faiss

    if threads > 0:
        faiss.omp_set_num_threads(threads)
    n, d = vectors.shape
    dims = min(HNSW_DIMS, d)
    reduce = _reduction(vectors, center, dims, seed)
    index = faiss.IndexHNSWFlat(dims, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    for start in range(0, n, _ANN_CHUNK):
        part = unit_rows(vectors[start : start + _ANN_CHUNK], center=center) @ reduce
        index.add(np.ascontiguousarray(part))
    candidates = min(n - 1, max(HNSW_CANDIDATES, k + 16))
    index.hnsw.efSearch = max(ef_search, candidates + 1)
    # |x - c| of every row, once: the exact cosine of a candidate j for a query unit row u is
    # then (x_j . u - c . u) / |x_j - c|, from the raw row, with no per-candidate centring
    norms = np.empty(n, np.float32)
    for start in range(0, n, _ANN_CHUNK):
        part = np.asarray(vectors[start : start + _ANN_CHUNK], dtype=np.float32) - center
        norms[start : start + len(part)] = np.maximum(np.linalg.norm(part, axis=1), 1e-12)
    idx = np.empty((n, k), np.int64)
    sim = np.empty((n, k), np.float32)
    for start in range(0, n, _ANN_CHUNK):
        q = unit_rows(vectors[start : start + _ANN_CHUNK], center=center)
        _, found = index.search(np.ascontiguousarray(q @ reduce), candidates + 1)
        qc = q @ center
        for sub in range(0, len(q), _CHUNK):
            rows = np.arange(start + sub, start + min(sub + _CHUNK, len(q)))
            cand = found[sub : sub + len(rows)]
            owner = np.repeat(np.arange(len(rows)), cand.shape[1]) + sub
            flat = cand.ravel()
            valid = (flat >= 0) & (flat != start + owner)
            exact = np.full(flat.shape, -np.inf, np.float32)
            order = np.flatnonzero(valid)[np.argsort(flat[valid], kind="stable")]
            other = np.asarray(vectors[flat[order]], dtype=np.float32)  # sorted: sequential
            dots = np.einsum("ij,ij->i", other, q[owner[order]]) - qc[owner[order]]
            exact[order] = dots / norms[flat[order]]
            exact = exact.reshape(cand.shape)
            top = np.argsort(-exact, axis=1, kind="stable")[:, :k]
            i = np.take_along_axis(cand, top, 1)
            s = np.take_along_axis(exact, top, 1)
            idx[rows] = np.where(np.isfinite(s), i, -1)
            sim[rows] = s
    del index
    return NeighbourGraph(idx, sim, "hnsw")


def neighbour_graph(
    vectors: np.ndarray,
    k: int = GRAPH_K,
    *,
    center: np.ndarray | None = None,
    method: str = "auto",
    exact_below: int = EXACT_BELOW,
    threads: int = 0,
    ef_search: int = HNSW_EF_SEARCH,
    seed: int = 0,
    pairs_at: float | None = None,
) -> NeighbourGraph:
    """The k nearest other rows of every row by centred cosine.

    method: "exact", "hnsw", or "auto" (exact below ``exact_below`` rows). threads: for HNSW
    (0 = every core). center: subtracted before the cosine (default: the mean row).
    pairs_at: exact search also keeps all pairs at or above it (see ``NeighbourGraph.pairs``)."""
    if method not in ("auto", "exact", "hnsw"):
        raise ValueError(f"method must be 'auto', 'exact' or 'hnsw', got {method!r}")
    n = len(vectors)
    c = column_mean(vectors) if center is None else np.asarray(center, np.float32)
    k = max(0, min(k, n - 1))
    if k == 0:
        return NeighbourGraph(np.zeros((n, 0), np.int64), np.zeros((n, 0), np.float32), "exact")
    if method == "hnsw" or (method == "auto" and n >= exact_below):
        return _hnsw_graph(vectors, k, c, threads=threads, ef_search=ef_search, seed=seed)
    found: list | None = None if pairs_at is None else []
    idx, sim = exact_neighbours(vectors, k, center=c, pairs=found, pairs_at=pairs_at or 1.0)
    all_pairs = None
    if found is not None:
        all_pairs = np.concatenate(found).astype(np.float64) if found else np.zeros((0, 3))
        all_pairs = all_pairs[np.lexsort((all_pairs[:, 1], all_pairs[:, 0]))]
    return NeighbourGraph(idx, sim.astype(np.float32), "exact", all_pairs, pairs_at)


def similar_pairs(
    vectors: np.ndarray, *, threshold: float = NEAR_DUPLICATE, center: np.ndarray | None = None
) -> np.ndarray:
    """Every pair i < j whose centred cosine is >= threshold, as rows (i, j, similarity).

    Exact, O(n²) work in O(chunk x n) memory: the audit uses it below ``EXACT_BELOW`` rows
    and reads the pairs off :func:`neighbour_graph` above."""
    c = column_mean(vectors) if center is None else np.asarray(center, np.float32)
    u = _unit_all(vectors, c)
    n = len(u)
    found = []
    for start in range(0, n, _CHUNK):
        block = u[start : start + _CHUNK] @ u.T
        rows, cols = np.nonzero(block >= threshold)
        rows = rows + start
        keep = rows < cols
        found.append(np.stack([rows[keep], cols[keep], block[rows[keep] - start, cols[keep]]], 1))
    if not found:
        return np.zeros((0, 3))
    return np.concatenate(found).astype(np.float64)


def nearest(
    vectors: np.ndarray,
    k: int,
    *,
    groups: np.ndarray | None = None,
    center: np.ndarray | None = None,
    graph: NeighbourGraph | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest other rows of each row by centred cosine: (indices (n, k), similarities).

    Rows in the same ``groups`` id (copies of one picture) are not each other's neighbours, so
    a duplicated file cannot vouch for its own label. graph: a precomputed
    :func:`neighbour_graph` of the same vectors (exact search when None)."""
    c = column_mean(vectors) if center is None else np.asarray(center, np.float32)
    if graph is None:
        return exact_neighbours(vectors, k, groups=groups, center=c)
    return graph.excluding_groups(k, groups, vectors, c)


def components(n: int, pairs: np.ndarray) -> np.ndarray:
    """Connected-component id of each of n rows, linking the (i, j, ...) rows of pairs; a
    component's id is its smallest row."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    links = np.asarray(pairs)[:, :2].astype(np.int64) if len(pairs) else np.zeros((0, 2), int)
    if n == 0:
        return np.zeros(0, np.int64)
    graph = coo_matrix((np.ones(len(links)), (links[:, 0], links[:, 1])), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    smallest = np.full(label.max() + 1, n, np.int64)
    np.minimum.at(smallest, label, np.arange(n))
    return smallest[label]


def group_members(ids: np.ndarray) -> list[np.ndarray]:
    """Rows of each id of two or more rows, in order of the id: one sort, not a scan per id."""
    ids = np.asarray(ids)
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    cuts = np.flatnonzero(np.diff(sorted_ids)) + 1
    return [g for g in np.split(order, cuts) if len(g) > 1]


def duplicate_groups(
    n: int, *, sha256: list[str] | None = None, pairs: np.ndarray | None = None
) -> np.ndarray:
    """Group id per row: rows with the same sha256, or linked by near-duplicate pairs, share one."""
    links = []
    if pairs is not None and len(pairs):
        links.append(np.asarray(pairs)[:, :2].astype(np.int64))
    if sha256 is not None:
        first: dict[str, int] = {}
        same = [(first.setdefault(s, i), i) for i, s in enumerate(sha256)]
        links.append(np.array([(a, b) for a, b in same if a != b], dtype=np.int64).reshape(-1, 2))
    return components(n, np.concatenate(links) if links else np.zeros((0, 2), np.int64))
