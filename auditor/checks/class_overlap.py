"""Which two labels of the data are the same thing under two names.

For each pair of classes we ask a classifier to tell them apart, out of sample, and turn its
AUC into an overlap in [0,1] (:mod:`auditor.separability`): 1 = indistinguishable, 0 = fully
separable. A pair at or above ``threshold`` (default 0.5, i.e. AUC 0.75) is one class under
two names. Calibration on the flower photos: half of the tulips renamed "orchids" scores
>= 0.70; the closest real pair (roses/tulips) <= 0.08.

Byte-identical copies are set aside first (``cross_class_duplicate`` reports them), and near
copies are kept in one fold, so copies cannot make two classes look alike or apart.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from auditor.features import auto_dims, fit_projection
from auditor.findings import Finding
from auditor.inputs import as_matrix, as_strings, check_data, check_fraction, check_severity
from auditor.separability import OVERLAP_THRESHOLD, overlap


@dataclass(frozen=True)
class OverlapMatrix:
    """Pairwise overlap of the data's classes; NaN where a class was too small to test."""

    classes: list[str]
    overlap: np.ndarray  # (k, k), symmetric, diagonal 1
    auc: np.ndarray  # (k, k)
    sizes: dict[str, int]  # rows per class that entered the test

    def to_dict(self) -> dict:
        def clean(m: np.ndarray) -> list[list[float | None]]:
            return [[None if np.isnan(v) else round(float(v), 4) for v in row] for row in m]

        return {"classes": self.classes, "matrix": clean(self.overlap), "auc": clean(self.auc)}


def unique_rows(sha256: Sequence[str] | None, labels: Sequence[str]) -> np.ndarray:
    """Mask keeping one row per picture: the first of each sha256 within a class, and none of a
    sha256 that appears under two labels."""
    n = len(labels)
    if sha256 is None:
        return np.ones(n, bool)
    labels_of: dict[str, set[str]] = {}
    for s, label in zip(sha256, labels, strict=True):
        labels_of.setdefault(s, set()).add(label)
    seen: set[str] = set()
    keep = np.zeros(n, bool)
    for i, s in enumerate(sha256):
        if len(labels_of[s]) == 1 and s not in seen:
            keep[i] = True
        seen.add(s)
    return keep


def overlap_matrix(
    features: np.ndarray,
    labels: Sequence[str],
    *,
    sha256: Sequence[str] | None = None,
    groups: np.ndarray | None = None,
    folds: int = 5,
    ridge: float = 1.0,
    min_images: int = 5,
    seed: int = 0,
) -> OverlapMatrix:
    """Overlap of every pair of classes with at least min_images rows (after dropping copies)."""
    x = as_matrix(features, name="features")
    labels = as_strings(labels, name="labels", rows=len(x))
    keep = unique_rows(sha256, labels)
    lab = np.array(labels)
    classes = sorted(set(labels))
    k = len(classes)
    ov = np.full((k, k), np.nan)
    auc = np.full((k, k), np.nan)
    np.fill_diagonal(ov, 1.0)
    np.fill_diagonal(auc, 0.5)
    rows = {c: np.flatnonzero(keep & (lab == c)) for c in classes}
    for (i, a), (j, b) in combinations(enumerate(classes), 2):
        ra, rb = rows[a], rows[b]
        if len(ra) < min_images or len(rb) < min_images:
            continue
        g = None if groups is None else np.asarray(groups)[np.r_[ra, rb]]
        o, u = overlap(x[ra], x[rb], folds=folds, ridge=ridge, seed=seed, groups=g)
        ov[i, j] = ov[j, i] = o
        auc[i, j] = auc[j, i] = u
    return OverlapMatrix(classes, ov, auc, {c: len(r) for c, r in rows.items()})


def _suspects(a: str, b: str, sizes: dict[str, int], known: Collection[str] | None) -> list[str]:
    """The label(s) to blame: the new one if exactly one is new, else the smaller, else both."""
    if known is not None and (a in known) != (b in known):
        return [b] if a in known else [a]
    if sizes[a] != sizes[b]:
        return [a] if sizes[a] < sizes[b] else [b]
    return [a, b]


def class_overlap(
    vectors: np.ndarray,
    labels: Sequence[str],
    paths: Sequence[str],
    *,
    threshold: float = OVERLAP_THRESHOLD,
    severity: str = "fail",
    folds: int = 5,
    ridge: float = 1.0,
    min_images: int = 5,
    sha256: Sequence[str] | None = None,
    groups: np.ndarray | None = None,
    known_labels: Collection[str] | None = None,
    features: np.ndarray | None = None,
    matrix: OverlapMatrix | None = None,
    seed: int = 0,
) -> list[Finding]:
    """One finding per pair of classes whose overlap is at least ``threshold``.

    vectors: embeddings (n, d). features: the same rows in the audit's whitened space
    (:mod:`auditor.features`; fitted here when None). groups: near-copy group per row (kept
    in one fold). known_labels: labels that existed before (previous commit, reference); when
    exactly one of a pair is new, the finding's files are that label's files, else those of
    the smaller class. matrix: a precomputed :func:`overlap_matrix`.
    A class with fewer than min_images distinct pictures is not tested."""
    x, labels, paths = check_data(vectors, labels, paths)
    check_fraction(threshold, name="threshold")
    check_severity(severity)
    if sha256 is not None:
        sha256 = as_strings(sha256, name="sha256", rows=len(x))
    if matrix is None:
        if features is None:
            if len(x) < 3:
                return []
            features = fit_projection(x, dims=auto_dims(len(set(labels))), seed=seed)(x)
        matrix = overlap_matrix(
            as_matrix(features, name="features", rows=len(x)),
            labels,
            sha256=sha256,
            groups=groups,
            folds=folds,
            ridge=ridge,
            min_images=min_images,
            seed=seed,
        )
    findings = []
    for i, j in combinations(range(len(matrix.classes)), 2):
        score = matrix.overlap[i, j]
        if np.isnan(score) or score < threshold:
            continue
        a, b = matrix.classes[i], matrix.classes[j]
        suspects = _suspects(a, b, matrix.sizes, known_labels)
        files = sorted(p for p, label in zip(paths, labels, strict=True) if label in suspects)
        where = " and ".join(f"/{s}" for s in suspects)
        findings.append(
            Finding(
                check="class_overlap",
                severity=severity,
                classes=[a, b],
                score=float(score),
                files=files,
                message=f"{a} and {b} are indistinguishable: a classifier tells them apart with "
                f"AUC {matrix.auc[i, j]:.2f} (overlap {score:.2f}; different real classes "
                f"score below {threshold:.2f}). They are one class under two names: merge them "
                f"or fix the labels under {where}",
                details={
                    "auc": round(float(matrix.auc[i, j]), 4),
                    "threshold": threshold,
                    "suspect": suspects,
                    "images": {a: matrix.sizes[a], b: matrix.sizes[b]},
                },
            )
        )
    return findings
