"""Real-shaped synthetic embeddings at any size: clustered, 1024-d, non-negative.

The shape comes from the 600 real mobilenet_1.0_224 embeddings of the shared photos
(bench/flower_embeddings.py): a row is the real global mean, plus a class centre, plus
within-class variation, then clipped at 0 as a ReLU-pooled feature is. Both the centres and
the variation are random Gaussian mixtures of the real photos' within-class residuals, so
they live in the real data's directions with its covariance; each class also has 8
sub-clusters (kinds of picture). The model is fitted in square-root space (squaring back
gives the real skew), and the centres are scaled so that classes are as separable as the
real ones (``BETWEEN_OVER_WITHIN``). What it
reproduces (``check()`` prints it next to the real figures): raw cosine of unrelated rows
~0.46, about a quarter of the values 0, the closest distinct rows below the 0.80 near-copy
threshold, and real-like separability of classes.

Planted problems, each with its ground truth returned:
- near copies: ``copies`` share of rows replaced by a noisy copy of another row of the same
  class (centred cosine 0.9-0.99);
- label flips: ``flips`` share of rows given another class's label;
- a contaminated class: label ``contaminated`` whose rows are drawn from class 0's
  distribution (one class under two names: class_overlap must fire on it).

Rows are generated chunk by chunk straight into a float32 .npy file, so a million of them
(4 GB) never sit in memory twice.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

OUT = Path(__file__).resolve().parent / "out"
#: between-class over within-class variance. The real photos' ratio is 0.125, but their
#: classes differ along few directions; random centres differ along all of them, so at the
#: real ratio every pair is perfectly separable. At 0.01 the closest of 5 classes of 120 rows
#: overlaps 0.085 (real: roses/tulips 0.08-0.13) and the rest less, as in the real photos.
BETWEEN_OVER_WITHIN = 0.01
ZERO_OFFSET = 0.15  # subtracted before the clip: about a quarter of the values become 0
SUBCLUSTERS = 8  # kinds of picture within a class (close-ups, fields, ...)
SUBCLUSTER_SHARE = 0.35  # of the within-class variance


@dataclass
class Planted:
    path: Path  # the .npy of the vectors (n, 1024) float32
    labels: np.ndarray  # given labels (after flips), str
    true_labels: np.ndarray
    paths: list[str]
    sha256: list[str]
    flipped: np.ndarray  # row indices whose label was flipped
    copies: np.ndarray  # (m, 2) rows (source, copy)
    contaminated: str


def _real():
    """The real rows, and the model fitted in square-root space (mean, residuals)."""
    from flower_embeddings import load

    _p, labels, _s, x = load()
    labels = np.array(labels)
    classes = sorted(set(labels))
    y = np.sqrt(x.astype(np.float64))
    means = np.stack([y[labels == c].mean(axis=0) for c in classes])
    residuals = y - means[np.searchsorted(classes, labels)]
    return x, labels, y.mean(axis=0), residuals


def _mix(residuals: np.ndarray, rows: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian combinations of the residuals with their covariance (rows, d)."""
    a = rng.normal(size=(rows, len(residuals))) / np.sqrt(len(residuals))
    return a @ residuals


def generate(
    n: int,
    classes: int,
    *,
    seed: int = 0,
    copies: float = 0.01,
    flips: float = 0.02,
    contaminated_share: float = 0.01,
    out: Path | None = None,
    chunk: int = 50_000,
) -> Planted:
    """n rows in ``classes`` classes (plus the contaminated one), written to ``out``."""
    rng = np.random.default_rng(seed)
    _x, _labels, mu, residuals = _real()
    d = residuals.shape[1]
    centres = _mix(residuals, classes, rng) * np.sqrt(BETWEEN_OVER_WITHIN)
    subcentres = _mix(residuals, classes * SUBCLUSTERS, rng).reshape(classes, SUBCLUSTERS, -1)
    subcentres *= np.sqrt(SUBCLUSTER_SHARE)
    n_contaminated = max(20, int(n * contaminated_share))
    true_code = rng.integers(0, classes, n)
    true_code[:n_contaminated] = 0  # drawn from class 0...
    names = np.array([f"class{c:04d}" for c in range(classes)])
    true_labels = names[true_code]
    given = true_labels.astype(object)
    given[:n_contaminated] = "contaminated"  # ...but named otherwise
    out = Path(out or OUT / f"scale_{n}_{classes}_{seed}.npy")
    out.parent.mkdir(parents=True, exist_ok=True)
    vectors = np.lib.format.open_memmap(out, mode="w+", dtype=np.float32, shape=(n, d))
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        code = true_code[start:stop]
        v = (
            mu
            - ZERO_OFFSET
            + centres[code]
            + subcentres[code, rng.integers(0, SUBCLUSTERS, len(code))]
            + _mix(residuals, stop - start, rng) * np.sqrt(1 - SUBCLUSTER_SHARE)
        )
        vectors[start:stop] = np.maximum(v, 0.0) ** 2
    # near copies: a row replaced by a lightly perturbed copy of another row of its class
    n_copies = int(n * copies)
    rows = rng.permutation(np.arange(n_contaminated, n))[: 2 * n_copies].reshape(-1, 2)
    pairs = []
    for src, dst in rows:
        if true_code[src] != true_code[dst]:
            continue
        noise = rng.normal(size=d) * rng.uniform(0.02, 0.08) * vectors[src].std()
        vectors[dst] = np.maximum(vectors[src] + noise, 0.0)
        pairs.append((src, dst))
    vectors.flush()
    # label flips, among the rows that are neither contaminated nor copies
    copied = {int(r) for p in pairs for r in p}
    candidates = np.array([i for i in range(n_contaminated, n) if i not in copied])
    flipped = np.sort(rng.choice(candidates, int(n * flips), replace=False))
    shift = rng.integers(1, classes, len(flipped))
    given[flipped] = names[(true_code[flipped] + shift) % classes]
    paths = [f"/{given[i]}/{i:07d}.jpg" for i in range(n)]
    return Planted(
        path=out,
        labels=given,
        true_labels=true_labels,
        paths=paths,
        sha256=[f"{i:064x}" for i in range(n)],
        flipped=flipped,
        copies=np.array(pairs, dtype=np.int64).reshape(-1, 2),
        contaminated="contaminated",
    )


def shape_figures(x: np.ndarray, labels: np.ndarray, *, rows: int = 3000, seed: int = 0) -> dict:
    """Zero share, raw cosine of unrelated rows, and the closest distinct centred cosine among
    a sample of rows (both the real and the synthetic data are measured the same way)."""
    rng = np.random.default_rng(seed)
    take = np.sort(rng.choice(len(x), min(rows, len(x)), replace=False))
    s = np.asarray(x[take], dtype=np.float64)
    lab = np.asarray(labels)[take]
    raw = s / np.linalg.norm(s, axis=1, keepdims=True)
    c = raw @ raw.T
    unrelated = c[lab[:, None] != lab[None, :]]
    u = s - s.mean(axis=0)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    cc = u @ u.T
    np.fill_diagonal(cc, -1)
    return {
        "zero_share": round(float((s == 0).mean()), 3),
        "raw_cosine_unrelated": round(float(unrelated.mean()), 3),
        "closest_distinct_centred": round(float(cc.max()), 3),
        "median_nearest_centred": round(float(np.median(cc.max(axis=1))), 3),
    }


def closest_pair_overlap(x: np.ndarray, labels: np.ndarray) -> float:
    """The largest class_overlap between two different classes (separability)."""
    from auditor.checks.class_overlap import overlap_matrix
    from auditor.features import auto_dims, fit_projection

    labels = [str(v) for v in labels]
    features = fit_projection(x, dims=auto_dims(len(set(labels))))(x)
    m = np.nan_to_num(overlap_matrix(features, labels).overlap, nan=-1.0)
    np.fill_diagonal(m, -1.0)
    return round(float(m.max()), 3)


def check(classes: int = 5) -> dict:
    """The synthetic figures next to the real photos', on as many rows as the real set."""
    x, labels, _mu, _r = _real()
    planted = generate(len(x), classes, copies=0.0, flips=0.0, out=OUT / "scale_check.npy")
    syn = np.asarray(np.load(planted.path))
    real = shape_figures(x, labels, rows=len(x))
    real["closest_pair_overlap"] = closest_pair_overlap(x, labels)
    synthetic = shape_figures(syn, planted.true_labels, rows=len(x))
    synthetic["closest_pair_overlap"] = closest_pair_overlap(syn, planted.true_labels)
    return {"real": real, "synthetic": synthetic}


if __name__ == "__main__":
    print(check())
