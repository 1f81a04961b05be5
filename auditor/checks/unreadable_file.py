"""Which files could not be decoded as images: non-images, corrupt, truncated or empty files.

Embed writes a record for each of them (status ``unreadable`` and a reason) instead of
crashing, so that a stray ``.DS_Store`` becomes a finding here.
"""

from __future__ import annotations

from collections.abc import Sequence

from auditor.findings import Finding
from auditor.inputs import as_strings, check_severity
from pipelines.layout import label_of


def unreadable_file(
    paths: Sequence[str],
    reasons: Sequence[str | None],
    *,
    labels: Sequence[str] | None = None,
    severity: str = "warn",
) -> list[Finding]:
    """One finding per unreadable file, naming the file and why it could not be read.

    labels: the class of each file (default: its top-level folder)."""
    paths = as_strings(paths, name="paths", rows=len(paths))
    if len(reasons) != len(paths):
        raise ValueError(f"reasons has {len(reasons)} entries but paths has {len(paths)}")
    labels = (
        [label_of(p) for p in paths]
        if labels is None
        else as_strings(labels, name="labels", rows=len(paths))
    )
    check_severity(severity)
    return [
        Finding(
            check="unreadable_file",
            severity=severity,
            classes=[label] if label else [],
            score=1.0,
            files=[path],
            message=f"{path} cannot be read as an image ({reason or 'no reason given'}); "
            "delete it or replace it with a valid image",
            details={"reason": reason},
        )
        for path, reason, label in zip(paths, reasons, labels, strict=True)
    ]
