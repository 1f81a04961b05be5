"""Which labels of the data have no precedent: absent from the reference gallery (or, with
no reference, from the previous audited commit) and looking like none of its labels.

A new label is not an error, but it changes what the model predicts, so it asks for review
(warn). A label the gallery lacks that *does* look like a gallery label is a
``lookalike_class`` instead, and is not reported here. Novelty = 1 - the largest overlap with
any gallery label (:mod:`lookalike_class` explains the test).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

from auditor.checks.lookalike_class import GalleryMatch, match_for
from auditor.findings import Finding
from auditor.inputs import check_data, check_fraction, check_severity
from auditor.separability import OVERLAP_THRESHOLD


def new_label(
    vectors: np.ndarray,
    labels: Sequence[str],
    paths: Sequence[str],
    gallery_vectors: np.ndarray | None = None,
    gallery_labels: Sequence[str] | None = None,
    *,
    known_labels: Collection[str] | None = None,
    threshold: float = OVERLAP_THRESHOLD,
    severity: str = "warn",
    candidates: int = 3,
    folds: int = 5,
    ridge: float = 1.0,
    min_images: int = 5,
    sha256: Sequence[str] | None = None,
    gallery_name: str = "reference",
    features: np.ndarray | None = None,
    gallery_features: np.ndarray | None = None,
    match: GalleryMatch | None = None,
    seed: int = 0,
) -> list[Finding]:
    """One finding per data label absent from the gallery (or from known_labels when no gallery
    embeddings are given) whose overlap with every gallery label stays below threshold.

    threshold must be the one lookalike_class uses, so that each unknown label gets exactly one
    of the two findings. Other options as for :func:`lookalike_class.lookalike_class`."""
    x, labels, paths = check_data(vectors, labels, paths)
    check_fraction(threshold, name="threshold")
    check_severity(severity)
    if gallery_vectors is None and gallery_labels is None and match is None:
        if known_labels is None:
            return []
        known = set(known_labels)
        match = None
    else:
        if match is None:
            options = dict(
                candidates=candidates, folds=folds, ridge=ridge, min_images=min_images, seed=seed
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
        known = set(match.gallery_classes) | set(known_labels or ())
    findings = []
    by_label: dict[str, list[str]] = {}
    for p, lab in zip(paths, labels, strict=True):
        by_label.setdefault(lab, []).append(p)
    for label in sorted(set(labels) - known):
        files = sorted(by_label[label])
        details: dict = {"gallery": gallery_name, "images": len(files)}
        if match is None:
            score = 1.0
            detail = f"it is not among the labels of the {gallery_name}"
        else:
            best, top = match.best(label)
            if best is None:
                score = 1.0
                detail = (
                    f"it has too few distinct images ({match.sizes.get(label, 0)}) to compare "
                    f"with the {gallery_name}"
                )
            elif top >= threshold:
                continue  # a lookalike: lookalike_class reports it
            else:
                score = 1.0 - top
                vote = match.get(label, best, "votes")
                detail = (
                    f"the {gallery_name} has no such label and its images look like none of its "
                    f"labels (closest: {best}, overlap {top:.2f}, nearest for {vote:.0%} of them)"
                )
                details.update(closest=best, closest_overlap=round(top, 4), votes=round(vote, 4))
                details.update(match.sample_details(label, best))
        findings.append(
            Finding(
                check="new_label",
                severity=severity,
                classes=[label],
                score=score,
                files=files,
                message=f"{label} is a new label: {detail}. Review /{label}; if it is a real new "
                "class, add examples of it to the reference",
                details=details,
            )
        )
    return findings
