"""Which pictures sit on both sides of a train/test split: an exact or near copy in the
training split makes the test score of that picture meaningless, so the reported accuracy is
inflated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from auditor.checks.duplicate import copy_groups, copy_links, group_similarity
from auditor.findings import Finding
from auditor.inputs import as_strings, check_data, check_fraction, check_severity
from auditor.neighbours import NEAR_DUPLICATE


def split_leakage(
    vectors: np.ndarray,
    labels: Sequence[str],
    paths: Sequence[str],
    splits: Mapping[str, str],
    *,
    sha256: Sequence[str] | None = None,
    near_threshold: float = NEAR_DUPLICATE,
    severity: str = "warn",
    center: np.ndarray | None = None,
    pairs: np.ndarray | None = None,
) -> list[Finding]:
    """One finding per group of copies of one picture found in two or more splits.

    splits: split name ("train", "validation", "test", ...) per path; paths it does not name
    are ignored. Other options as for :func:`auditor.checks.duplicate.duplicate`."""
    x, labels, paths = check_data(vectors, labels, paths)
    if not isinstance(splits, Mapping):
        raise TypeError(f"splits must map path -> split name, got {type(splits).__name__}")
    if sha256 is not None:
        sha256 = as_strings(sha256, name="sha256", rows=len(x))
    check_fraction(near_threshold, name="near_threshold", low=-1.0)
    check_severity(severity)
    links = copy_links(x, sha256, near_threshold=near_threshold, center=center, pairs=pairs)
    highest = group_similarity(len(x), links, how="max")
    findings = []
    for g in copy_groups(len(x), links):
        where = {paths[i]: splits[paths[i]] for i in g if paths[i] in splits}
        if len(set(where.values())) < 2:
            continue
        exact = sha256 is not None and len({sha256[i] for i in g}) == 1
        similarity = 1.0 if exact else highest.get(int(g[0]), 1.0)
        files = sorted(where)
        names = sorted(set(where.values()))
        findings.append(
            Finding(
                check="split_leakage",
                severity=severity,
                classes=sorted({labels[i] for i in g}),
                score=similarity,
                files=files,
                message=f"copies of one picture are in both the {' and '.join(names)} splits: "
                f"{', '.join(f'{p} ({s})' for p, s in sorted(where.items())[:4])}; keep them "
                "in one split",
                details={"kind": "exact" if exact else "near", "splits": where},
            )
        )
    return findings
