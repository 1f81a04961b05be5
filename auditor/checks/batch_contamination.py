"""Whether a commit's new images of a class belong to another class: a contaminated batch.

For each data commit since the baseline, and each class it added images to, a linear head
fitted on the images that were there **before** the commit (every class; the batch never
trains the model that judges it) predicts a class for each added image. The share of the batch
predicted as another class is a biased count: some of the old class's own images look like
another class too. So the share is corrected the way a test's prevalence is
(Rogan-Gladen): with ``fpr`` the rate at which the class's old images are predicted
elsewhere and ``tpr`` the rate at which the other classes' old images are not predicted as
this class (both out of fold, on the old images),

    contamination = (observed - fpr) / (tpr - fpr),   clipped to [0, 1]

about 0 for more photos of the same kind and about the true share of foreign photos otherwise,
with a Wilson interval carried through the same correction. Like class_overlap's 2*(1-AUC) it
is a calibrated quantity, not a ranking: ``warn_share`` and ``fail_share`` are shares of the
batch. A one-sided binomial test of ``observed`` against ``fpr`` (``alpha``) guards small
batches. Cost: one head per tested commit, fitted on at most ``MAX_FIT_ROWS`` old rows, and
one prediction per added row: linear in the data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from auditor.findings import Finding
from auditor.inputs import as_matrix, check_data, check_fraction, check_severity
from auditor.separability import splits

#: old rows a commit's head is fitted on at most (a stratified sample)
MAX_FIT_ROWS = 20_000
#: old rows the calibration (fpr, tpr) is computed on at most, out of fold
MAX_CALIBRATION_ROWS = 10_000


def _sample(rows: np.ndarray, y: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    """At most cap of rows, the same share of each class (at least 2 of each)."""
    if len(rows) <= cap:
        return rows
    keep = []
    for c in np.unique(y[rows]):
        r = rows[y[rows] == c]
        keep.append(rng.choice(r, min(len(r), max(2, round(cap * len(r) / len(rows)))), False))
    return np.sort(np.concatenate(keep))


class _Head:
    """A standardised logistic regression on the audit's features."""

    def __init__(self, z: np.ndarray, y: np.ndarray, regularization: float) -> None:
        from sklearn.linear_model import LogisticRegression

        self.mu, self.sd = z.mean(axis=0), z.std(axis=0) + 1e-6
        self.model = LogisticRegression(C=regularization, max_iter=1000)
        self.model.fit((z - self.mu) / self.sd, y)

    def predict(self, z: np.ndarray) -> np.ndarray:
        return self.model.classes_[self.model.predict_proba((z - self.mu) / self.sd).argmax(1)]


def _wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _corrected(share: float, fpr: float, tpr: float) -> float:
    return float(np.clip((share - fpr) / max(tpr - fpr, 1e-6), 0.0, 1.0))


def _calibration(
    z: np.ndarray, y: np.ndarray, rows: np.ndarray, k: int, regularization: float, seed: int
) -> np.ndarray:
    """confusion[c, d]: the share of old class-c rows an out-of-fold head predicts as d."""
    confusion = np.zeros((k, k))
    counts = np.bincount(y[rows], minlength=k)
    if (counts[counts > 0] < 3).any() or (counts > 0).sum() < 2:
        # too few to cross-validate: assume a perfect head (the test then relies on alpha)
        np.fill_diagonal(confusion, 1.0)
        return confusion
    pred = np.empty(len(rows), np.int64)
    for train, test in splits(y[rows], None, 3, seed):
        if len(np.unique(y[rows[train]])) < 2:
            pred[test] = y[rows[test]]
            continue
        pred[test] = _Head(z[rows[train]], y[rows[train]], regularization).predict(z[rows[test]])
    np.add.at(confusion, (y[rows], pred), 1.0)
    confusion /= np.maximum(confusion.sum(axis=1, keepdims=True), 1.0)
    return confusion


def batch_contamination(
    vectors: np.ndarray,
    labels: Sequence[str],
    paths: Sequence[str],
    batch: Sequence[int] | np.ndarray,
    commits: Sequence[str],
    *,
    severity: str = "warn",
    class_severity: str = "fail",
    warn_share: float = 0.15,
    fail_share: float = 0.5,
    alpha: float = 0.01,
    min_added: int = 5,
    min_images: int = 5,
    regularization: float = 0.01,
    features: np.ndarray | None = None,
    seed: int = 0,
) -> list[Finding]:
    """One finding per (commit, class) whose added images look like another class.

    batch: per row, the index in ``commits`` (oldest first) of the commit that added it, -1 for
    images from before them. warn_share / fail_share: the corrected share of the batch that
    belongs elsewhere at which it warns (``severity``) or fails (``class_severity``). alpha: the
    binomial test's level. min_added: smaller batches of a class are not tested. min_images:
    old images a class needs to be compared with (a class new in this commit is new_label's
    question). regularization: the heads' inverse L2 strength. features: the rows in the
    audit's whitened space (default: the vectors)."""
    x, labels, paths = check_data(vectors, labels, paths)
    check_severity(severity)
    check_severity(class_severity)
    check_fraction(warn_share, name="warn_share")
    check_fraction(fail_share, name="fail_share")
    check_fraction(alpha, name="alpha")
    b = np.asarray(batch, dtype=np.int64).ravel()
    if len(b) != len(x):
        raise ValueError(f"batch has {len(b)} entries for {len(x)} rows")
    if len(b) and b.max() >= len(commits):
        raise ValueError(f"batch names commit {b.max()} of {len(commits)}")
    z = x if features is None else as_matrix(features, name="features", rows=len(x))
    if not len(x) or (b < 0).all() or not np.isfinite(z).all():
        return []
    names, y = np.unique(np.asarray(labels), return_inverse=True)
    y = y.ravel()
    k = len(names)
    rng = np.random.default_rng([seed, 23])
    old0 = np.flatnonzero(b < 0)
    confusion = _calibration(
        z, y, _sample(old0, y, MAX_CALIBRATION_ROWS, rng), k, regularization, seed
    )
    from scipy.stats import binom

    findings: list[Finding] = []
    for j, commit in enumerate(commits):
        new = np.flatnonzero(b == j)
        if len(new) < min_added:
            continue
        old = np.flatnonzero(b < j) if j else old0
        old_counts = np.bincount(y[old], minlength=k)
        tested = [
            c
            for c in np.unique(y[new])
            if (y[new] == c).sum() >= min_added and old_counts[c] >= min_images
        ]
        present = np.flatnonzero(old_counts > 0)
        if not tested or len(present) < 2:
            continue
        fit = _sample(old, y, MAX_FIT_ROWS, rng)
        pred = _Head(z[fit], y[fit], regularization).predict(z[new])
        for c in tested:
            rows = new[y[new] == c]
            p = pred[y[new] == c]
            elsewhere = p != c
            n, hits = len(rows), int(elsewhere.sum())
            known = confusion[c].sum() > 0
            # fpr: old c predicted elsewhere (smoothed: never exactly 0); tpr: old others
            # not predicted as c, weighted by their size
            fpr = (1 - confusion[c, c]) if known else 0.0
            fpr = max(fpr, 0.5 / max(old_counts[c], 1))
            others = [d for d in present if d != c and confusion[d].sum() > 0]
            w = old_counts[others].astype(float)
            tpr = float((1 - confusion[others, c]) @ w / w.sum()) if others else 1.0
            share = hits / n
            estimate = _corrected(share, fpr, tpr)
            lo, hi = _wilson(hits, n)
            interval = [round(_corrected(lo, fpr, tpr), 4), round(_corrected(hi, fpr, tpr), 4)]
            p_value = float(binom.sf(hits - 1, n, fpr)) if hits else 1.0
            if estimate < warn_share or p_value >= alpha:
                continue
            where = np.bincount(p[elsewhere], minlength=k)
            other = names[int(where.argmax())]
            level = class_severity if estimate >= fail_share else severity
            flagged = sorted(paths[i] for i in rows[elsewhere])
            cls = str(names[c])
            findings.append(
                Finding(
                    check="batch_contamination",
                    severity=level,
                    classes=[cls, str(other)],
                    score=round(estimate, 4),
                    files=flagged,
                    message=f"commit {commit[:12]} added {n} images to {cls}; about "
                    f"{estimate:.0%} of them (95% CI {interval[0]:.0%}-{interval[1]:.0%}) look "
                    f"like {other}, against {fpr:.0%} of the {cls} images before it: "
                    f"{hits} files listed; move them or revert the commit",
                    details={
                        "commit": commit,
                        "added": n,
                        "looks_elsewhere": hits,
                        "observed_share": round(share, 4),
                        "share": round(estimate, 4),
                        "interval": interval,
                        "p_value": float(f"{p_value:.3g}"),
                        "old_images": int(old_counts[c]),
                        "fpr": round(float(fpr), 4),
                        "tpr": round(tpr, 4),
                        "other_classes": {
                            str(names[d]): int(where[d]) for d in np.flatnonzero(where)
                        },
                    },
                )
            )
    return findings
