"""Class-level statistics at scale: which rows of each class a test looks at, which pairs of
classes are worth testing, and the confidence interval that comes with a sample.

A two-sample test of two classes does not need all of their million rows: its AUC is as
well determined by ``SAMPLE_PER_CLASS`` rows a side as the thresholds need (the interval
below says how well), and the cost of the test then stops growing with N. Classes at or
under the cap are used whole, so audits of up to ``SAMPLE_PER_CLASS`` images per class (the
shared photos have 120) are unchanged. bench/audit_quality.py shows that sampling the shared
photos far harder (30 a class) changes no verdict.

With K classes there are K(K-1)/2 pairs; :func:`candidate_pairs` keeps each class's nearest
centroids (about log2 K of them), so the class checks cost K log K tests instead of K².
A pair of classes under one name has nearly the same centroid, so it is always a candidate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

#: rows per class a class-level test uses at most
SAMPLE_PER_CLASS = 2000
#: up to this many classes every pair is tested
ALL_PAIRS_UP_TO = 12


def class_codes(labels: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """(sorted class names, the class index of each row)."""
    classes, codes = np.unique(np.asarray(labels, dtype=object).astype(str), return_inverse=True)
    return [str(c) for c in classes], codes.ravel()


def rows_by_class(codes: np.ndarray, k: int) -> list[np.ndarray]:
    """Row indices of each of k classes, ascending: one sort, not a scan per class."""
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(k + 1))
    return [order[bounds[c] : bounds[c + 1]] for c in range(k)]


def sample(rows: np.ndarray, cap: int, *, seed: int, salt: int = 0) -> np.ndarray:
    """At most ``cap`` of rows, drawn at random (seeded per class by ``salt``), ascending."""
    if cap <= 0 or len(rows) <= cap:
        return rows
    rng = np.random.default_rng([seed, salt])
    return np.sort(rng.choice(rows, cap, replace=False))


def centroids(features: np.ndarray, codes: np.ndarray, k: int) -> np.ndarray:
    """Mean feature row of each class (k, d), summed in one pass."""
    sums = np.zeros((k, features.shape[1]))
    np.add.at(sums, codes, features)
    counts = np.bincount(codes, minlength=k).astype(float)
    return sums / np.maximum(counts, 1)[:, None]


def neighbours_per_class(k: int) -> int:
    """How many nearest centroids each class is tested against: all of them up to
    ``ALL_PAIRS_UP_TO`` classes, then ceil(log2 k) + 3."""
    if k <= ALL_PAIRS_UP_TO:
        return max(k - 1, 0)
    return min(k - 1, math.ceil(math.log2(k)) + 3)


def candidate_pairs(centres: np.ndarray, *, per_class: int | None = None) -> list[tuple[int, int]]:
    """Pairs (i < j) where j is among i's ``per_class`` nearest centroids or i among j's."""
    k = len(centres)
    per_class = neighbours_per_class(k) if per_class is None else per_class
    if per_class >= k - 1:
        return [(i, j) for i in range(k) for j in range(i + 1, k)]
    sq = (centres**2).sum(axis=1)
    pairs: set[tuple[int, int]] = set()
    for start in range(0, k, 1024):
        block = sq[start : start + 1024, None] - 2 * centres[start : start + 1024] @ centres.T
        block += sq[None, :]
        rows = np.arange(start, min(start + 1024, k))
        block[rows - start, rows] = np.inf
        near = np.argpartition(block, per_class - 1, axis=1)[:, :per_class]
        for i, js in zip(rows, near, strict=True):
            pairs.update((min(i, j), max(i, j)) for j in js.tolist())
    return sorted(pairs)


def auc_interval(auc: float, n_a: int, n_b: int, *, z: float = 1.96) -> tuple[float, float]:
    """A 95 % interval for an AUC from n_a and n_b rows (Hanley and McNeil, 1982)."""
    a = min(max(auc, 1e-6), 1 - 1e-6)
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (n_a - 1) * (q1 - a * a) + (n_b - 1) * (q2 - a * a)) / max(n_a * n_b, 1)
    half = z * math.sqrt(max(var, 0.0))
    return max(0.0, auc - half), min(1.0, auc + half)


def overlap_interval(auc: float, n_a: int, n_b: int) -> list[float]:
    """The interval of overlap = 2(1 - AUC) that :func:`auc_interval` gives, low to high."""
    lo, hi = auc_interval(auc, n_a, n_b)
    return [round(max(0.0, 2 * (1 - hi)), 4), round(min(1.0, 2 * (1 - lo)), 4)]
