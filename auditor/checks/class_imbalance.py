"""Whether some classes are much larger than others, or too small to learn.

A model trained on skewed classes leans to the big ones; a class with a handful of images
cannot be learned or tested. ``min_images = 20`` follows tensorflow-for-poets' retrain.py,
which warns below 20 images per folder.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from auditor.findings import Finding
from auditor.inputs import as_strings, check_severity


def class_imbalance(
    labels: Sequence[str],
    paths: Sequence[str],
    *,
    max_ratio: float = 5.0,
    min_images: int = 20,
    severity: str = "warn",
) -> list[Finding]:
    """A finding when largest/smallest class size exceeds max_ratio (classes = [largest,
    smallest], no files), and one per class with fewer than min_images images (its files)."""
    labels = as_strings(labels, name="labels", rows=len(labels))
    paths = as_strings(paths, name="paths", rows=len(labels))
    if max_ratio < 1:
        raise ValueError(f"max_ratio must be >= 1, got {max_ratio}")
    check_severity(severity)
    counts = Counter(labels)
    findings = []
    if len(counts) >= 2:
        largest = max(sorted(counts), key=counts.get)
        smallest = min(sorted(counts), key=counts.get)
        ratio = counts[largest] / counts[smallest]
        if ratio > max_ratio:
            findings.append(
                Finding(
                    check="class_imbalance",
                    severity=severity,
                    classes=[largest, smallest],
                    score=1.0 - counts[smallest] / counts[largest],
                    files=[],
                    message=f"classes are imbalanced: {largest} has {counts[largest]} images, "
                    f"{smallest} only {counts[smallest]} ({ratio:.1f}x, more than {max_ratio:g}x);"
                    f" add images to {smallest} or weight the classes when training",
                    details={"ratio": round(ratio, 3), "counts": dict(sorted(counts.items()))},
                )
            )
    for label in sorted(counts):
        if counts[label] < min_images:
            findings.append(
                Finding(
                    check="class_imbalance",
                    severity=severity,
                    classes=[label],
                    score=1.0 - counts[label] / min_images,
                    files=sorted(p for p, lab in zip(paths, labels, strict=True) if lab == label),
                    message=f"{label} has only {counts[label]} images, fewer than {min_images}: "
                    "too few to learn or test; add images or remove the class",
                    details={"images": counts[label], "min_images": min_images},
                )
            )
    return findings
