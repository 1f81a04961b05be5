"""Which pictures carry two labels: the same file, or a near copy of it, filed under two
classes. One such picture is a labelling slip (warn); when a large share of a class is copies
of another class's pictures, the class itself is bogus (fail), and :mod:`class_overlap`, which
runs on the data without exact copies, could not see it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from auditor.checks.duplicate import copy_groups, copy_links, group_similarity
from auditor.findings import Finding
from auditor.inputs import as_strings, check_data, check_fraction, check_severity
from auditor.neighbours import NEAR_DUPLICATE


def cross_class_duplicate(
    vectors: np.ndarray,
    labels: Sequence[str],
    paths: Sequence[str],
    *,
    sha256: Sequence[str] | None = None,
    near_threshold: float = NEAR_DUPLICATE,
    severity: str = "warn",
    fail_fraction: float = 0.5,
    class_severity: str = "fail",
    center: np.ndarray | None = None,
    pairs: np.ndarray | None = None,
) -> list[Finding]:
    """One finding per group of copies of one picture that spans two or more labels.

    fail_fraction: when the copies shared by two classes make up at least this fraction of
    either class, every finding on that pair gets ``class_severity`` instead of ``severity``.
    Other options as for :func:`auditor.checks.duplicate.duplicate`."""
    x, labels, paths = check_data(vectors, labels, paths)
    if sha256 is not None:
        sha256 = as_strings(sha256, name="sha256", rows=len(x))
    check_fraction(near_threshold, name="near_threshold", low=-1.0)
    check_fraction(fail_fraction, name="fail_fraction")
    check_severity(severity)
    check_severity(class_severity)
    links = copy_links(x, sha256, near_threshold=near_threshold, center=center, pairs=pairs)
    groups = [g for g in copy_groups(len(x), links) if len({labels[i] for i in g}) > 1]
    highest = group_similarity(len(x), links, how="max")
    sizes: dict[str, int] = defaultdict(int)
    for label in labels:
        sizes[label] += 1
    # rows of each class that are copied into each other class
    shared: dict[tuple[str, str], set[int]] = defaultdict(set)
    for g in groups:
        names = {labels[i] for i in g}
        for i in g:
            for other in names - {labels[i]}:
                shared[(labels[i], other)].add(i)

    def pair_fraction(a: str, b: str) -> float:
        return max(len(shared[(a, b)]) / sizes[a], len(shared[(b, a)]) / sizes[b])

    findings = []
    for g in groups:
        names = sorted({labels[i] for i in g})
        fractions = {
            f"{a}/{b}": round(pair_fraction(a, b), 4)
            for k, a in enumerate(names)
            for b in names[k + 1 :]
        }
        whole_class = max(fractions.values()) >= fail_fraction
        exact = sha256 is not None and len({sha256[i] for i in g}) == 1
        similarity = 1.0 if exact else highest.get(int(g[0]), 1.0)
        files = sorted(paths[i] for i in g)
        message = (
            f"one picture is filed under {' and '.join(names)}: {', '.join(files[:4])}"
            f"{' ...' if len(files) > 4 else ''}; keep it under the right label only"
        )
        if whole_class:
            worst = max(fractions, key=fractions.get)
            message += (
                f" ({fractions[worst]:.0%} of the pictures of one of {worst.replace('/', ' and ')}"
                " are copies of the other's: the class itself is suspect)"
            )
        findings.append(
            Finding(
                check="cross_class_duplicate",
                severity=class_severity if whole_class else severity,
                classes=names,
                score=similarity,
                files=files,
                message=message,
                details={
                    "kind": "exact" if exact else "near",
                    "labels": {paths[i]: labels[i] for i in g},
                    "class_fraction": fractions,
                },
            )
        )
    return findings
