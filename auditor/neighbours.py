"""Who looks like whom: cosine neighbours and near-identical pairs of embeddings.

MobileNet's pooled features are all non-negative, so raw cosines of unrelated photos sit
around 0.46 and crowd the top of the scale. We subtract a centre (the mean embedding of the
audited data) first; on the 600 flower photos, edited copies (re-saved at JPEG quality 40,
half size, 90 % crop, +20 % brightness, mirrored) then score 0.68-1.0 against their source
(95.7 % at 0.80 or more) while the closest two distinct photos score 0.78. Hence
``NEAR_DUPLICATE = 0.80`` (measured by bench/audit_quality.py).

Work is done in row chunks, so memory stays O(chunk x n) however large n is.
"""

from __future__ import annotations

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


def near_duplicate_threshold(architecture: str | None) -> float:
    """The calibrated centred-cosine threshold for near copies in this backbone's space."""
    return NEAR_DUPLICATE_BY_ARCHITECTURE.get(architecture or "", NEAR_DUPLICATE)


_CHUNK = 2048


def unit_rows(vectors: np.ndarray, *, center: np.ndarray | None = None) -> np.ndarray:
    """Rows minus ``center`` (the row mean when None), scaled to unit length."""
    x = np.asarray(vectors, dtype=np.float32)
    c = x.mean(axis=0) if center is None else np.asarray(center, dtype=np.float32)
    x = x - c
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def similar_pairs(
    vectors: np.ndarray, *, threshold: float = NEAR_DUPLICATE, center: np.ndarray | None = None
) -> np.ndarray:
    """Every pair i < j whose centred cosine is >= threshold, as rows (i, j, similarity)."""
    u = unit_rows(vectors, center=center)
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
) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest other rows of each row by centred cosine: (indices (n, k), similarities).

    Rows in the same ``groups`` id (copies of one picture) are not each other's neighbours, so
    a duplicated file cannot vouch for its own label."""
    u = unit_rows(vectors, center=center)
    n = len(u)
    k = min(k, n - 1)
    if k <= 0:
        return np.zeros((n, 0), int), np.zeros((n, 0))
    idx = np.empty((n, k), dtype=np.int64)
    sim = np.empty((n, k), dtype=np.float64)
    for start in range(0, n, _CHUNK):
        block = u[start : start + _CHUNK] @ u.T
        rows = np.arange(start, min(start + _CHUNK, n))
        block[rows - start, rows] = -np.inf
        if groups is not None:
            same = groups[rows][:, None] == groups[None, :]
            block[same] = -np.inf
        part = np.argpartition(-block, k - 1, axis=1)[:, :k]
        vals = np.take_along_axis(block, part, 1)
        order = np.argsort(-vals, axis=1, kind="stable")
        idx[rows] = np.take_along_axis(part, order, 1)
        sim[rows] = np.take_along_axis(vals, order, 1)
    return idx, sim


def components(n: int, pairs: np.ndarray) -> np.ndarray:
    """Connected-component id of each of n rows, linking the (i, j, ...) rows of pairs."""
    parent = np.arange(n)

    def root(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for i, j in np.asarray(pairs)[:, :2].astype(int) if len(pairs) else []:
        ri, rj = root(i), root(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    return np.array([root(i) for i in range(n)])


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
