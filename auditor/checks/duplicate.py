"""Which pictures are in a class more than once: byte-identical files (same sha256) and near
copies (re-saved, resized, cropped, brightened or mirrored), whose centred cosine similarity is
at least ``near_threshold`` (calibrated in :mod:`auditor.neighbours`).

Copies inflate a class and leak between training and test folds; they are a review item,
not a broken dataset, hence ``info`` by default.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from auditor.findings import Finding
from auditor.inputs import as_strings, check_data, check_fraction, check_severity
from auditor.neighbours import NEAR_DUPLICATE, components, group_members, similar_pairs


def copy_links(
    vectors: np.ndarray,
    sha256: Sequence[str] | None,
    *,
    near_threshold: float,
    center: np.ndarray | None,
    pairs: np.ndarray | None,
) -> np.ndarray:
    """Rows (i, j, similarity): exact copies (similarity 1) and near copies above the threshold."""
    if pairs is None:
        pairs = similar_pairs(vectors, threshold=near_threshold, center=center)
    pairs = np.asarray(pairs, dtype=np.float64).reshape(-1, 3)
    pairs = pairs[pairs[:, 2] >= near_threshold]
    exact = []
    if sha256 is not None:
        first: dict[str, int] = {}
        for i, s in enumerate(sha256):
            j = first.setdefault(s, i)
            if j != i:
                exact.append((j, i, 1.0))
    return np.concatenate([np.array(exact, dtype=np.float64).reshape(-1, 3), pairs])


def copy_groups(n: int, links: np.ndarray) -> list[np.ndarray]:
    """Row indices of each group of two or more copies, in a stable order."""
    return group_members(components(n, links))


def group_similarity(n: int, links: np.ndarray, *, how: str = "min") -> dict[int, float]:
    """The lowest (or highest) link similarity inside each group, keyed by the group's first
    row: one pass over the links, not a scan per group."""
    ids = components(n, links)
    out: dict[int, float] = {}
    if not len(links):
        return out
    owner = ids[links[:, 0].astype(np.int64)]
    order = np.lexsort((links[:, 2] if how == "min" else -links[:, 2], owner))
    owner, values = owner[order], links[order, 2]
    first = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    return {int(owner[i]): float(values[i]) for i in first}


def duplicate(
    vectors: np.ndarray,
    labels: Sequence[str],
    paths: Sequence[str],
    *,
    sha256: Sequence[str] | None = None,
    near_threshold: float = NEAR_DUPLICATE,
    severity: str = "info",
    center: np.ndarray | None = None,
    pairs: np.ndarray | None = None,
) -> list[Finding]:
    """One finding per group of copies of one picture inside one class.

    sha256: content hash per row, for exact copies. center: subtracted before the cosine
    (default: the mean row). pairs: precomputed (i, j, similarity) rows from
    :func:`auditor.neighbours.similar_pairs`, at a threshold no higher than near_threshold."""
    x, labels, paths = check_data(vectors, labels, paths)
    if sha256 is not None:
        sha256 = as_strings(sha256, name="sha256", rows=len(x))
    check_fraction(near_threshold, name="near_threshold", low=-1.0)
    check_severity(severity)
    links = copy_links(x, sha256, near_threshold=near_threshold, center=center, pairs=pairs)
    lab = np.array(labels)
    links = links[lab[links[:, 0].astype(int)] == lab[links[:, 1].astype(int)]]
    findings = []
    lowest = group_similarity(len(x), links, how="min")
    for group in copy_groups(len(x), links):
        exact = sha256 is not None and len({sha256[i] for i in group}) == 1
        similarity = 1.0 if exact else lowest.get(int(group[0]), 1.0)
        files = sorted(paths[i] for i in group)
        kind = "exact" if exact else "near"
        findings.append(
            Finding(
                check="duplicate",
                severity=severity,
                classes=[labels[group[0]]],
                score=similarity,
                files=files,
                message=f"{len(files)} {'identical' if exact else 'near-identical'} copies of one "
                f"picture in {labels[group[0]]}: {', '.join(files[:3])}"
                f"{' ...' if len(files) > 3 else ''}; keep one",
                details={"kind": kind, "similarity": round(similarity, 4)},
            )
        )
    return findings
