"""Whether a class's new images are a different kind of picture than the ones it had.

Per class, we compare the previous audited commit's images with the images this commit added
(by content hash). The statistic is the squared distance between the two centroids, as a
fraction of the class's within-class variance, minus what sampling alone gives
(``tr(S_prev)/n_prev + tr(S_added)/n_added``): about 0 when the new photos are more of the
same, and about the between-class distance when the content was replaced. A permutation test
on the same statistic guards small additions.

Calibration on the flower photos (bench/audit_quality.py, unit-length embeddings): more
photos of the same class give at most 0.06 (10 added) / 0.04 (60 added); replacing a class
with another class's photos gives at least 0.09 (10) / 0.11 (60). ``min_effect = 0.075``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from auditor.findings import Finding
from auditor.inputs import as_matrix, as_strings, check_data, check_fraction, check_severity
from auditor.sampling import SAMPLE_PER_CLASS, class_codes, rows_by_class, sample


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _spread(x: np.ndarray) -> float:
    """Unbiased mean squared distance to the centroid (trace of the covariance)."""
    return float(((x - x.mean(axis=0)) ** 2).sum(axis=1).sum() / max(len(x) - 1, 1))


def shift_effect(previous: np.ndarray, added: np.ndarray) -> float:
    """Bias-corrected squared centroid shift over the previous within-class variance."""
    sp, sa = _spread(previous), _spread(added)
    d2 = float(((previous.mean(axis=0) - added.mean(axis=0)) ** 2).sum())
    return (d2 - sp / len(previous) - sa / len(added)) / max(sp, 1e-12)


def effect_interval(
    previous: np.ndarray, added: np.ndarray, *, seed: int, resamples: int = 200, max_rows: int = 400
) -> list[float]:
    """A 95 % bootstrap interval of :func:`shift_effect` (each side resampled, at most
    ``max_rows`` rows a side, so its cost does not grow with the class)."""
    rng = np.random.default_rng([seed, 7])
    prev = previous[rng.choice(len(previous), min(len(previous), max_rows), replace=False)]
    new = added[rng.choice(len(added), min(len(added), max_rows), replace=False)]
    effects = [
        shift_effect(
            prev[rng.integers(0, len(prev), len(prev))], new[rng.integers(0, len(new), len(new))]
        )
        for _ in range(resamples)
    ]
    lo, hi = np.percentile(effects, [2.5, 97.5])
    return [round(float(lo), 4), round(float(hi), 4)]


def permutation_p(
    previous: np.ndarray, added: np.ndarray, *, permutations: int, seed: int, max_rows: int = 400
) -> float:
    """P-value of the centroid distance under random relabelling of the pooled rows."""
    rng = np.random.default_rng(seed)
    if len(previous) > max_rows:
        previous = previous[rng.choice(len(previous), max_rows, replace=False)]
    if len(added) > max_rows:
        added = added[rng.choice(len(added), max_rows, replace=False)]
    pooled = np.vstack([previous, added]).astype(np.float64)
    gram = pooled @ pooled.T
    n, na = len(pooled), len(added)
    members = np.zeros((n, permutations + 1), bool)
    members[len(previous) :, 0] = True
    for p in range(1, permutations + 1):
        members[rng.choice(n, na, replace=False), p] = True
    w = np.where(members, 1.0 / na, -1.0 / (n - na))
    stats = np.einsum("ip,ip->p", w, gram @ w)
    return float((1 + np.sum(stats[1:] >= stats[0] - 1e-12)) / (permutations + 1))


def drift(
    vectors: np.ndarray,
    labels: Sequence[str],
    paths: Sequence[str],
    previous_vectors: np.ndarray,
    previous_labels: Sequence[str],
    *,
    sha256: Sequence[str] | None = None,
    previous_sha256: Sequence[str] | None = None,
    previous_paths: Sequence[str] | None = None,
    min_effect: float = 0.075,
    alpha: float = 0.01,
    min_added: int = 5,
    permutations: int = 200,
    sample_per_class: int = SAMPLE_PER_CLASS,
    severity: str = "warn",
    seed: int = 0,
) -> list[Finding]:
    """One finding per class whose added images moved its centroid by at least min_effect with
    permutation p-value <= alpha. Added images are the class's rows whose sha256 (or, without
    hashes, path) the previous commit's class lacks; classes with fewer than min_added added
    or previous images are not tested. files = the added images."""
    x, labels, paths = check_data(vectors, labels, paths)
    prev = as_matrix(previous_vectors, name="previous_vectors")
    previous_labels = as_strings(previous_labels, name="previous_labels", rows=len(prev))
    if prev.shape[1] != x.shape[1]:
        raise ValueError(f"vectors are {x.shape} but previous_vectors are {prev.shape}")
    if sha256 is not None and previous_sha256 is not None:
        keys = as_strings(sha256, name="sha256", rows=len(x))
        prev_keys = as_strings(previous_sha256, name="previous_sha256", rows=len(prev))
    elif previous_paths is not None:
        keys = paths
        prev_keys = as_strings(previous_paths, name="previous_paths", rows=len(prev))
    else:
        raise ValueError("give sha256 and previous_sha256, or previous_paths, to tell added images")
    check_fraction(alpha, name="alpha")
    check_severity(severity)
    classes, codes = class_codes(labels)
    prev_classes, prev_codes = class_codes(previous_labels)
    rows_of = dict(zip(classes, rows_by_class(codes, len(classes)), strict=True))
    prev_rows_of = dict(
        zip(prev_classes, rows_by_class(prev_codes, len(prev_classes)), strict=True)
    )
    findings = []
    for c, label in enumerate(sorted(set(classes) & set(prev_classes))):
        before = {prev_keys[i] for i in prev_rows_of[label]}
        rows = rows_of[label]
        added_all = np.array([i for i in rows if keys[i] not in before], dtype=int)
        old_all = prev_rows_of[label]
        if len(added_all) < min_added or len(old_all) < min_added:
            continue
        # a class larger than the cap is compared on a random sample of each side
        added = sample(added_all, sample_per_class, seed=seed, salt=2 * c)
        old_rows = sample(old_all, sample_per_class, seed=seed, salt=2 * c + 1)
        new, old = _unit(x[added]), _unit(prev[old_rows])
        effect = shift_effect(old, new)
        if effect < min_effect:
            continue
        p = permutation_p(old, new, permutations=permutations, seed=seed)
        if p > alpha:
            continue
        interval = effect_interval(old, new, seed=seed)
        files = sorted(paths[i] for i in added_all)
        findings.append(
            Finding(
                check="drift",
                severity=severity,
                classes=[label],
                score=effect,
                files=files,
                message=f"the {len(added_all)} images added to {label} are not like its "
                f"{len(old_all)} previous ones: the class centre moved by {effect:.2f} of its "
                f"spread (more of the same stays below {min_effect:g}; permutation p = {p:.3f})."
                f" Check that the new {label} images show {label}",
                details={
                    "effect": round(effect, 4),
                    "p_value": round(p, 4),
                    "added": len(added_all),
                    "previous": len(old_all),
                    "kept": len(rows) - len(added_all),
                    "sample": {"added": len(added), "previous": len(old)},
                    "interval": interval,
                },
            )
        )
    return findings
