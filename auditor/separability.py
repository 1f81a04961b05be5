"""How well can two sets of embeddings be told apart? A calibrated two-sample statistic.

A classifier two-sample test: fit a ridge-regularised linear classifier to tell set A from
set B, score each row out of sample (k-fold cross-validation), and take the AUC of those
scores. If A and B come from one distribution (half of the tulips renamed "orchids"), no
classifier can beat chance and the AUC is ~0.5; if they are different kinds of things (roses
and tulips), it is close to 1. AUC ignores the ratio of the set sizes, so a 20-image gallery
class compares fairly with a 100-image data class.

We report ``overlap = clip(2 * (1 - AUC), 0, 1)``: 1 = indistinguishable, 0 = perfectly
separable. On mobilenet_1.0_224 embeddings of the flower photos (bench/audit_quality.py) the
closest real pair (roses/tulips) has AUC >= 0.96 (overlap <= 0.08) and random splits of one
class have AUC <= 0.65 (overlap >= 0.70), so ``OVERLAP_THRESHOLD = 0.5`` (AUC 0.75) sits far
from both regimes.

Ridge, not logistic regression: its solve is closed-form, so the ~(classes^2 x folds) fits of
an audit take milliseconds, and on these data its AUCs match logistic regression's.
"""

from __future__ import annotations

import numpy as np

from auditor.inputs import as_matrix

OVERLAP_THRESHOLD = 0.5


def overlap_from_auc(auc: float) -> float:
    return float(np.clip(2.0 * (1.0 - auc), 0.0, 1.0))


def _auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Mann-Whitney AUC with ties counted half."""
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    n_pos = int(positive.sum())
    n_neg = len(scores) - n_pos
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def fold_ids(y: np.ndarray, groups: np.ndarray | None, folds: int, seed: int) -> np.ndarray:
    """A cross-validation fold per row: stratified by class, and with every row of one group
    (copies of one picture) in the same fold. Linear time, unlike sklearn's
    StratifiedGroupKFold, which loops over groups in Python."""
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    if groups is None:
        groups = np.arange(len(y))
    _, first, inverse = np.unique(np.asarray(groups), return_index=True, return_inverse=True)
    group_class = y[first]
    fold_of_group = np.empty(len(first), dtype=np.int64)
    for c in np.unique(group_class):
        members = rng.permutation(np.flatnonzero(group_class == c))
        fold_of_group[members] = (np.arange(len(members)) + rng.integers(folds)) % folds
    return fold_of_group[inverse.ravel()]


def splits(y: np.ndarray, groups: np.ndarray | None, folds: int, seed: int):
    """(train, test) index pairs from :func:`fold_ids`, skipping empty folds."""
    ids = fold_ids(y, groups, folds, seed)
    for f in range(folds):
        test = np.flatnonzero(ids == f)
        if len(test) and len(test) < len(y):
            yield np.flatnonzero(ids != f), test


def separability_auc(
    a: np.ndarray,
    b: np.ndarray,
    *,
    folds: int = 5,
    ridge: float = 1.0,
    seed: int = 0,
    groups: np.ndarray | None = None,
) -> float:
    """Cross-validated AUC of a ridge classifier telling rows of a from rows of b.

    ``groups`` (one id per row of a then b) keeps copies of a picture in one fold.
    ``ridge`` is the penalty per training row, on standardised features."""
    a = as_matrix(a, name="a")
    b = as_matrix(b, name="b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must have the same width, got {a.shape} and {b.shape}")
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"need at least 2 rows on each side, got {len(a)} and {len(b)}")
    x = np.vstack([a, b]).astype(np.float64)
    y = np.r_[np.zeros(len(a), bool), np.ones(len(b), bool)]
    if groups is not None:
        groups = np.asarray(groups)
        if len(groups) != len(x):
            raise ValueError(f"groups has {len(groups)} entries, a and b have {len(x)} rows")
    target = np.where(y, 1.0, -1.0)
    scores = np.zeros(len(x))
    n_groups = [
        len(np.unique(np.asarray(groups)[y == side]))
        if groups is not None
        else int((y == side).sum())
        for side in (False, True)
    ]
    k = max(2, min(folds, *n_groups))
    for train, test in splits(y, groups, k, seed):
        mu = x[train].mean(axis=0)
        sd = x[train].std(axis=0) + 1e-6
        z = (x[train] - mu) / sd
        yt = y[train]
        # balanced weights: each side counts for half, whatever its size
        w = np.where(yt, 0.5 / max(yt.sum(), 1), 0.5 / max((~yt).sum(), 1)) * len(train)
        gram = z.T @ (z * w[:, None]) + ridge * len(train) * np.eye(z.shape[1])
        beta = np.linalg.solve(gram, z.T @ (w * target[train]))
        intercept = np.average(target[train] - z @ beta, weights=w)
        scores[test] = ((x[test] - mu) / sd) @ beta + intercept
    return _auc(scores, y)


def overlap(a: np.ndarray, b: np.ndarray, **options) -> tuple[float, float]:
    """(overlap in [0,1], AUC) of two sets; options as for :func:`separability_auc`."""
    auc = separability_auc(a, b, **options)
    return overlap_from_auc(auc), auc
