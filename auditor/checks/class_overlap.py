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

import numpy as np

from auditor.features import auto_dims, fit_projection
from auditor.findings import Finding
from auditor.inputs import as_matrix, as_strings, check_data, check_fraction, check_severity
from auditor.sampling import (
    SAMPLE_PER_CLASS,
    candidate_pairs,
    centroids,
    class_codes,
    overlap_interval,
    rows_by_class,
    sample,
)
from auditor.separability import OVERLAP_THRESHOLD, overlap

#: past this many classes the document keeps the tested pairs, not the whole K x K matrix
MATRIX_UP_TO = 60


@dataclass(frozen=True)
class OverlapMatrix:
    """Pairwise overlap of the data's classes; NaN where a class was too small to test."""

    classes: list[str]
    overlap: np.ndarray  # (k, k), symmetric, diagonal 1
    auc: np.ndarray  # (k, k)
    sizes: dict[str, int]  # distinct pictures per class
    sampled: dict[str, int] | None = None  # rows per class that entered the tests
    tested: int = 0  # pairs of classes tested (the nearest centroids; all of them when few)

    def to_dict(self) -> dict:
        def clean(m: np.ndarray) -> list[list[float | None]]:
            return [[None if np.isnan(v) else round(float(v), 4) for v in row] for row in m]

        out: dict = {"classes": self.classes, "tested_pairs": self.tested}
        if len(self.classes) <= MATRIX_UP_TO:
            out.update(matrix=clean(self.overlap), auc=clean(self.auc))
        else:
            i, j = np.nonzero(np.triu(~np.isnan(self.overlap), 1))
            out["pairs"] = [
                {"classes": [self.classes[a], self.classes[b]], "score": round(float(v), 4)}
                for a, b, v in zip(i, j, self.overlap[i, j], strict=True)
            ]
        if self.sampled is not None:
            out["sampled"] = self.sampled
        return out

    def sample_of(self, a: str, b: str) -> dict[str, int]:
        used = self.sampled or self.sizes
        return {a: used[a], b: used[b]}


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
    sample_per_class: int = SAMPLE_PER_CLASS,
    seed: int = 0,
) -> OverlapMatrix:
    """Overlap of the pairs of classes with at least min_images rows (after dropping copies):
    every pair up to a dozen classes, else each class against its nearest centroids
    (:func:`auditor.sampling.candidate_pairs`). A class larger than ``sample_per_class`` is
    tested on that many of its rows, drawn at random (0: never sample)."""
    x = as_matrix(features, name="features")
    labels = as_strings(labels, name="labels", rows=len(x))
    keep = unique_rows(sha256, labels)
    classes, codes = class_codes(labels)
    k = len(classes)
    ov = np.full((k, k), np.nan)
    auc = np.full((k, k), np.nan)
    np.fill_diagonal(ov, 1.0)
    np.fill_diagonal(auc, 0.5)
    members = rows_by_class(codes[keep], k)
    kept = np.flatnonzero(keep)
    distinct = [kept[m] for m in members]
    rows = [sample(r, sample_per_class, seed=seed, salt=c) for c, r in enumerate(distinct)]
    testable = [c for c in range(k) if len(rows[c]) >= min_images]
    pairs: list[tuple[int, int]] = []
    if len(testable) >= 2:
        centres = centroids(x[np.concatenate([rows[c] for c in testable])],
                            np.repeat(np.arange(len(testable)), [len(rows[c]) for c in testable]),
                            len(testable))  # fmt: skip
        pairs = [(testable[i], testable[j]) for i, j in candidate_pairs(centres)]
    g_all = None if groups is None else np.asarray(groups)
    for i, j in pairs:
        ra, rb = rows[i], rows[j]
        g = None if g_all is None else g_all[np.r_[ra, rb]]
        o, u = overlap(x[ra], x[rb], folds=folds, ridge=ridge, seed=seed, groups=g)
        ov[i, j] = ov[j, i] = o
        auc[i, j] = auc[j, i] = u
    sizes = {c: len(distinct[i]) for i, c in enumerate(classes)}
    sampled = {c: len(rows[i]) for i, c in enumerate(classes)}
    return OverlapMatrix(classes, ov, auc, sizes, sampled, len(pairs))


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
    sample_per_class: int = SAMPLE_PER_CLASS,
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
            sample_per_class=sample_per_class,
            seed=seed,
        )
    findings = []
    by_label: dict[str, list[str]] = {}
    for p, label in zip(paths, labels, strict=True):
        by_label.setdefault(label, []).append(p)
    hits = np.triu(np.nan_to_num(matrix.overlap, nan=-1.0) >= threshold, 1)
    for i, j in zip(*np.nonzero(hits), strict=True):
        score = matrix.overlap[i, j]
        a, b = matrix.classes[i], matrix.classes[j]
        suspects = _suspects(a, b, matrix.sizes, known_labels)
        files = sorted(p for s in suspects for p in by_label.get(s, []))
        sample_sizes = matrix.sample_of(a, b)
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
                    "sample": sample_sizes,
                    "interval": overlap_interval(
                        float(matrix.auc[i, j]), sample_sizes[a], sample_sizes[b]
                    ),
                },
            )
        )
    return findings
