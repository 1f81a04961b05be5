"""Why an image was flagged, in a form a reviewer reads in two seconds.

For each label_issue finding: the image's nearest neighbours in the data (the ones that voted:
out of sample, and with commits, older than the image) and in the reference gallery, with
their labels and similarities; the out-of-sample class probabilities (the top few); and the
signals that fired. Kept compact in ``audit.json`` (top-k only, rounded), under
``details["explanation"]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from auditor.checks.label_issue import LabelScores
from auditor.findings import Finding
from auditor.neighbours import column_mean, unit_rows

#: neighbours and classes an explanation lists at most
TOP = 5
#: gallery columns compared with the flagged rows at once
_CHUNK = 65_536


def _gallery_nearest(
    q: np.ndarray, gallery: np.ndarray, k: int, center: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The k most similar gallery rows of each query row by centred cosine (exact; the
    queries are the flagged images only)."""
    uq = unit_rows(q, center=center)
    best_i = np.zeros((len(q), 0), np.int64)
    best_s = np.zeros((len(q), 0), np.float32)
    for start in range(0, len(gallery), _CHUNK):
        block = uq @ unit_rows(gallery[start : start + _CHUNK], center=center).T
        kk = min(k, block.shape[1])
        part = np.argpartition(-block, kk - 1, axis=1)[:, :kk]
        best_i = np.concatenate([best_i, part + start], axis=1)
        best_s = np.concatenate([best_s, np.take_along_axis(block, part, 1)], axis=1)
    order = np.argsort(-best_s, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(best_i, order, 1), np.take_along_axis(best_s, order, 1)


def explain_label_issues(
    findings: Sequence[Finding],
    scores: LabelScores,
    vectors: np.ndarray,
    labels: Sequence[str],
    paths: Sequence[str],
    *,
    gallery: tuple[np.ndarray, Sequence[str], Sequence[str]] | None = None,
    gallery_name: str = "reference",
    center: np.ndarray | None = None,
    top: int = TOP,
) -> list[Finding]:
    """The findings, each label_issue one with ``details["explanation"]``. gallery: (vectors,
    labels, paths) of the reference (or the previous commit)."""
    row_of = {p: i for i, p in enumerate(paths)}
    scored = {int(r): m for m, r in enumerate(scores.rows)}
    wanted = [
        (n, scored[row_of[f.files[0]]])
        for n, f in enumerate(findings)
        if f.check == "label_issue" and f.files and row_of.get(f.files[0]) in scored
    ]
    if not wanted:
        return list(findings)
    c = column_mean(vectors) if center is None else center
    near = None
    if gallery is not None and len(gallery[0]):
        q = np.asarray(vectors[[int(scores.rows[m]) for _, m in wanted]])
        near = _gallery_nearest(q, np.asarray(gallery[0]), top, c)
    out = list(findings)
    combined = scores.combined
    for j, (n, m) in enumerate(wanted):
        p = combined[m]
        order = np.argsort(-p, kind="stable")[:top]
        explanation: dict = {
            "probabilities": {scores.classes[int(k)]: round(float(p[k]), 3) for k in order},
            "signals": scores.fired(m),
        }
        if scores.neighbour_rows is not None:
            idx, sim = scores.neighbour_rows[m], scores.neighbour_similarity[m]
            keep = [t for t in range(len(idx)) if idx[t] >= 0 and np.isfinite(sim[t])][:top]
            rows = [int(scores.rows[idx[t]]) for t in keep]
            explanation["neighbours"] = [
                [paths[r], labels[r], round(float(sim[t]), 3)]
                for r, t in zip(rows, keep, strict=True)
            ]
        if near is not None:
            gi, gs = near
            explanation["gallery"] = gallery_name
            explanation["reference"] = [
                [gallery[2][int(g)], gallery[1][int(g)], round(float(s), 3)]
                for g, s in zip(gi[j], gs[j], strict=True)
            ]
        f = out[n]
        out[n] = replace(f, details={**f.details, "explanation": explanation})
    return out
