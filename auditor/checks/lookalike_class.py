"""Which label of the data looks like a *different* label of a reference gallery.

The gallery is a labelled set of other pictures (the ``label_reference`` repo, or the
previous audited commit). For each data label we find the gallery labels its images are
closest to (nearest gallery centroid, in the audit's whitened space), then run the same
two-sample test as :mod:`class_overlap` between the data label and each candidate: if the
reference's tulips cannot be told from the data's "orchids" (overlap >= ``threshold``), then
orchids *is* tulips under another name. This catches the seed scenario when the data has no
tulips class at all. A label that is in the gallery but looks like another gallery label
(a folder of tulips filed as roses) is caught the same way.

A label the gallery lacks and that overlaps no gallery label is new: see :mod:`new_label`.
Calibration (bench/audit_quality.py, 20 gallery images per class): a data class against the
same class of the gallery scores overlap >= 0.85, against any other class <= 0.21.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from auditor.checks.class_overlap import unique_rows
from auditor.features import auto_dims, fit_projection
from auditor.findings import Finding
from auditor.inputs import as_matrix, as_strings, check_data, check_fraction, check_severity
from auditor.sampling import (
    SAMPLE_PER_CLASS,
    class_codes,
    overlap_interval,
    rows_by_class,
    sample,
)
from auditor.separability import OVERLAP_THRESHOLD, overlap


@dataclass(frozen=True)
class GalleryMatch:
    """How each data label compares with the gallery's labels; NaN where not tested."""

    data_classes: list[str]
    gallery_classes: list[str]
    overlap: np.ndarray  # (data classes, gallery classes)
    auc: np.ndarray
    votes: np.ndarray  # share of a data label's images nearest to each gallery centroid
    sizes: dict[str, int]  # distinct images per data label
    sampled: dict[str, int] | None = None  # rows per data label the tests used
    gallery_sampled: dict[str, int] | None = None  # rows per gallery label the tests used

    def best(self, label: str, *, exclude_self: bool = True) -> tuple[str | None, float]:
        """The gallery label that overlaps ``label`` most, and that overlap."""
        i = self.data_classes.index(label)
        row = self.overlap[i].copy()
        if exclude_self and label in self.gallery_classes:
            row[self.gallery_classes.index(label)] = np.nan
        if np.all(np.isnan(row)):
            return None, float("nan")
        j = int(np.nanargmax(row))
        return self.gallery_classes[j], float(row[j])

    def sample_details(self, label: str, gallery_label: str) -> dict:
        """The rows each side of the test used, and the overlap's 95 % interval."""
        n_a = (self.sampled or self.sizes).get(label, 0)
        n_b = (self.gallery_sampled or {}).get(gallery_label, 0)
        auc = self.get(label, gallery_label, "auc")
        if not n_a or not n_b or np.isnan(auc):
            return {}
        return {
            "sample": {label: n_a, f"{gallery_label} (gallery)": n_b},
            "interval": overlap_interval(auc, n_a, n_b),
        }

    def get(self, label: str, gallery_label: str, what: str = "overlap") -> float:
        m = getattr(self, what)
        return float(m[self.data_classes.index(label), self.gallery_classes.index(gallery_label)])

    def to_dict(self) -> dict:
        def clean(m: np.ndarray) -> list[list[float | None]]:
            return [[None if np.isnan(v) else round(float(v), 4) for v in row] for row in m]

        return {
            "classes": self.data_classes,
            "gallery_classes": self.gallery_classes,
            "matrix": clean(self.overlap),
            "votes": clean(self.votes),
        }


def gallery_match(
    features: np.ndarray,
    labels: Sequence[str],
    gallery_features: np.ndarray,
    gallery_labels: Sequence[str],
    *,
    sha256: Sequence[str] | None = None,
    candidates: int = 3,
    folds: int = 5,
    ridge: float = 1.0,
    min_images: int = 5,
    min_gallery_images: int = 3,
    sample_per_class: int = SAMPLE_PER_CLASS,
    seed: int = 0,
) -> GalleryMatch:
    """Compare every data label with its ``candidates`` nearest gallery labels (and with its
    own name, when the gallery has it). Features of both sets must share one space."""
    x = as_matrix(features, name="features")
    labels = as_strings(labels, name="labels", rows=len(x))
    g = as_matrix(gallery_features, name="gallery_features")
    gallery_labels = as_strings(gallery_labels, name="gallery_labels", rows=len(g))
    if g.shape[1] != x.shape[1]:
        raise ValueError(
            f"features are {x.shape} but gallery_features are {g.shape}: widths differ"
        )
    keep = unique_rows(sha256, labels)
    data_classes, codes = class_codes(labels)
    all_gallery, gcodes = class_codes(gallery_labels)
    gallery_rows_all = rows_by_class(gcodes, len(all_gallery))
    chosen = [c for c, r in enumerate(gallery_rows_all) if len(r) >= min_gallery_images]
    gallery_classes = [all_gallery[c] for c in chosen]
    gallery_rows = [
        sample(gallery_rows_all[c], sample_per_class, seed=seed, salt=c) for c in chosen
    ]
    shape = (len(data_classes), len(gallery_classes))
    ov, auc, votes = np.full(shape, np.nan), np.full(shape, np.nan), np.zeros(shape)
    sizes: dict[str, int] = {}
    sampled: dict[str, int] = {}
    if not gallery_classes:
        return GalleryMatch(data_classes, gallery_classes, ov, auc, votes, sizes)
    centres = np.stack([g[gallery_rows_all[c]].mean(axis=0) for c in chosen]).astype(np.float64)
    centre_sq = (centres**2).sum(axis=1)
    kept = np.flatnonzero(keep)
    members = rows_by_class(codes[keep], len(data_classes))
    for i, label in enumerate(data_classes):
        distinct = kept[members[i]]
        sizes[label] = len(distinct)
        rows = sample(distinct, sample_per_class, seed=seed, salt=i)
        sampled[label] = len(rows)
        if len(rows) == 0:
            continue
        xr = x[rows].astype(np.float64)
        d2 = (xr**2).sum(axis=1)[:, None] - 2 * xr @ centres.T + centre_sq[None, :]
        votes[i] = np.bincount(d2.argmin(axis=1), minlength=len(gallery_classes)) / len(rows)
        if len(rows) < min_images:
            continue
        order = np.lexsort((d2.mean(axis=0), -votes[i]))
        tested = [int(j) for j in order[:candidates]]
        if label in gallery_classes and gallery_classes.index(label) not in tested:
            tested.append(gallery_classes.index(label))
        for j in tested:
            ov[i, j], auc[i, j] = overlap(
                x[rows], g[gallery_rows[j]], folds=folds, ridge=ridge, seed=seed
            )
    return GalleryMatch(
        data_classes,
        gallery_classes,
        ov,
        auc,
        votes,
        sizes,
        sampled,
        {c: len(r) for c, r in zip(gallery_classes, gallery_rows, strict=True)},
    )


def match_for(
    vectors: np.ndarray,
    labels: list[str],
    gallery_vectors: np.ndarray,
    gallery_labels: Sequence[str],
    *,
    features: np.ndarray | None,
    gallery_features: np.ndarray | None,
    sha256: Sequence[str] | None,
    options: dict,
) -> GalleryMatch:
    """gallery_match on precomputed features, or on a projection fitted to both sets here."""
    g = as_matrix(gallery_vectors, name="gallery_vectors")
    if features is None or gallery_features is None:
        both = np.vstack([vectors, g])
        project = fit_projection(both, dims=auto_dims(len(set(labels) | set(gallery_labels))))
        features, gallery_features = project(vectors), project(g)
    return gallery_match(
        features, labels, gallery_features, gallery_labels, sha256=sha256, **options
    )


def lookalike_class(
    vectors: np.ndarray,
    labels: Sequence[str],
    paths: Sequence[str],
    gallery_vectors: np.ndarray,
    gallery_labels: Sequence[str],
    *,
    threshold: float = OVERLAP_THRESHOLD,
    severity: str = "fail",
    candidates: int = 3,
    folds: int = 5,
    ridge: float = 1.0,
    min_images: int = 5,
    sha256: Sequence[str] | None = None,
    gallery_name: str = "reference",
    features: np.ndarray | None = None,
    gallery_features: np.ndarray | None = None,
    match: GalleryMatch | None = None,
    sample_per_class: int = SAMPLE_PER_CLASS,
    seed: int = 0,
) -> list[Finding]:
    """One finding per data label whose images look like a different gallery label.

    A label absent from the gallery is a lookalike of gallery label R when their overlap is
    >= threshold; a label present in the gallery is one when it overlaps R but not its own
    gallery namesake. features/gallery_features: both sets in one whitened space (fitted here
    when None). match: a precomputed :func:`gallery_match`. gallery_name: how messages call
    the gallery ("reference" or "previous commit")."""
    x, labels, paths = check_data(vectors, labels, paths)
    check_fraction(threshold, name="threshold")
    check_severity(severity)
    if match is None:
        options = dict(
            candidates=candidates,
            folds=folds,
            ridge=ridge,
            min_images=min_images,
            sample_per_class=sample_per_class,
            seed=seed,
        )
        match = match_for(
            x,
            labels,
            gallery_vectors,
            gallery_labels,
            features=features,
            gallery_features=gallery_features,
            sha256=sha256,
            options=options,
        )
    findings = []
    by_label: dict[str, list[str]] = {}
    for p, lab in zip(paths, labels, strict=True):
        by_label.setdefault(lab, []).append(p)
    for label in match.data_classes:
        best, score = match.best(label)
        if best is None or not score >= threshold:
            continue
        if label in match.gallery_classes:
            own = match.get(label, label)
            if own >= threshold:
                continue
        else:
            own = None
        files = sorted(by_label.get(label, []))
        vote = match.get(label, best, "votes")
        auc = match.get(label, best, "auc")
        why = (
            f"{label} looks like {best} of the {gallery_name}: {vote:.0%} of its "
            f"{match.sizes[label]} images are closest to {best}, and a classifier cannot tell "
            f"them from the {gallery_name}'s {best} (AUC {auc:.2f}, overlap {score:.2f})"
        )
        if own is None:
            fix = f"; /{label} holds {best} under a new name: rename it to {best} or remove it"
        else:
            fix = (
                f", while its own name in the {gallery_name} overlaps only {own:.2f}; "
                f"/{label} holds {best}: fix its labels"
            )
        findings.append(
            Finding(
                check="lookalike_class",
                severity=severity,
                classes=[label, best],
                score=score,
                files=files,
                message=why + fix,
                details={
                    "gallery": gallery_name,
                    "auc": round(auc, 4),
                    "votes": round(vote, 4),
                    "own_overlap": None if own is None else round(own, 4),
                    "threshold": threshold,
                    **match.sample_details(label, best),
                },
            )
        )
    return findings
