"""The space the statistical checks work in: embeddings made unit-length, then PCA-whitened.

Why: a two-sample classifier in 1,024 raw dimensions is both slow (a ridge solve per fold is
d^3) and noisy (most directions are within-class texture). The leading principal components
of the audited data carry the between-class structure; whitening them puts every direction
on the same scale so one ridge penalty fits all. On the flower photos, 32 whitened components
give real class pairs a cross-validated AUC >= 0.96 and same-class splits <= 0.65, as good as
the full 1,024 dimensions, at a fraction of the cost (bench/audit_quality.py).

The projection is fitted once per audit, on the data plus any reference and previous
embeddings, and applied to all three, so their coordinates are comparable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from auditor.inputs import as_matrix

_CHUNK = 65_536


def auto_dims(n_classes: int) -> int:
    """Default number of components: 6 per class, at least 32 and at most 128."""
    return int(min(128, max(32, 6 * n_classes)))


@dataclass(frozen=True)
class Projection:
    mean: np.ndarray  # (d,) mean of the unit-length rows it was fitted on
    components: np.ndarray  # (k, d) principal directions
    scale: np.ndarray  # (k,) standard deviation along each direction

    def __call__(self, vectors: np.ndarray) -> np.ndarray:
        """Whitened coordinates (n, k) of vectors, computed one chunk of rows at a time."""
        return self._project(vectors, self.components, self.scale)

    def plane(self, vectors: np.ndarray) -> np.ndarray:
        """Unwhitened coordinates on the first two components, for a scatter plot."""
        return self._project(vectors, self.components[:2], np.ones(2))

    def _project(self, vectors: np.ndarray, components: np.ndarray, scale: np.ndarray):
        n = len(vectors)
        out = np.empty((n, len(components)), np.float64)
        for start in range(0, n, _CHUNK):
            u = _unit(as_matrix(np.asarray(vectors[start : start + _CHUNK]), name="vectors"))
            out[start : start + _CHUNK] = ((u - self.mean) @ components.T) / scale
        return out


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def stacked_sample(parts: list[np.ndarray], *, max_rows: int = 4000, seed: int = 0) -> np.ndarray:
    """The rows of parts stacked, or the same random ``max_rows`` of them that
    :func:`fit_projection` would draw from the stack, without building the stack."""
    total = sum(len(p) for p in parts)
    if total <= max_rows:
        return np.vstack([np.asarray(p) for p in parts])
    rows = np.sort(np.random.default_rng(seed).choice(total, max_rows, replace=False))
    out, offset = [], 0
    for p in parts:
        mine = rows[(rows >= offset) & (rows < offset + len(p))] - offset
        out.append(np.asarray(p[mine]))
        offset += len(p)
    return np.vstack(out)


def fit_projection(
    vectors: np.ndarray, *, dims: int = 32, max_rows: int = 4000, seed: int = 0
) -> Projection:
    """PCA of the unit-length rows (at most ``max_rows`` of them, drawn at random with seed)."""
    if len(vectors) < 3:
        raise ValueError(f"need at least 3 embeddings to fit a projection, got {len(vectors)}")
    if dims < 2:
        raise ValueError(f"dims must be at least 2, got {dims}")
    rng = np.random.default_rng(seed)
    x = vectors
    if len(x) > max_rows:
        x = x[np.sort(rng.choice(len(x), max_rows, replace=False))]
    u = _unit(as_matrix(np.asarray(x))).astype(np.float64)
    mean = u.mean(axis=0)
    k = int(min(dims, len(u) - 1, u.shape[1]))
    centred = u - mean
    if k < min(centred.shape) // 2:
        from sklearn.utils.extmath import randomized_svd

        _, s, vt = randomized_svd(centred, k, n_iter=4, random_state=seed)
    else:
        _, s, vt = np.linalg.svd(centred, full_matrices=False)
        s, vt = s[:k], vt[:k]
    # fix the sign of each direction so the result does not depend on the solver
    signs = np.sign(vt[np.arange(k), np.abs(vt).argmax(axis=1)])
    vt = vt * signs[:, None]
    scale = s / np.sqrt(max(len(u) - 1, 1))
    return Projection(mean=mean, components=vt, scale=np.maximum(scale, 1e-9))
