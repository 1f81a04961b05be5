"""Embeddings built to order: Gaussian clusters standing in for classes of photos.

Each class is a cluster around its own mean; ``kind`` picks the cluster, so two labels can
share one kind (one class under two names) or a label can get a kind the others lack (a new
class). Real-looking numbers are not needed: the checks only see geometry.
"""

from __future__ import annotations

import hashlib

import numpy as np

from pipelines.records import EmbeddingSet

DIM = 64


def kind_means(
    kinds: int = 6, *, dim: int = DIM, separation: float = 6.0, seed: int = 1
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    m = rng.normal(size=(kinds, dim))
    return 10.0 + separation * m / np.linalg.norm(m, axis=1, keepdims=True)


def make(
    spec: list[tuple[str, int, int]],
    *,
    seed: int = 0,
    dim: int = DIM,
    spread: float = 1.0,
    separation: float = 6.0,
    prefix: str = "",
) -> EmbeddingSet:
    """An EmbeddingSet from (label, kind, count) triples; rows of one kind share a cluster.
    Paths are /<label>/<prefix><kind>_<i>.jpg and sha256 is derived from the path."""
    rng = np.random.default_rng(seed)
    means = kind_means(dim=dim, separation=separation)
    paths, labels, vecs = [], [], []
    for label, kind, count in spec:
        for i in range(count):
            paths.append(f"/{label}/{prefix}{kind}_{i}.jpg")
            labels.append(label)
            vecs.append(means[kind] + spread * rng.normal(size=dim))
    order = np.argsort(paths, kind="stable")
    return EmbeddingSet(
        paths=[paths[i] for i in order],
        labels=[labels[i] for i in order],
        sha256=[hashlib.sha256(paths[i].encode()).hexdigest() for i in order],
        vectors=np.array([vecs[i] for i in order], dtype=np.float32),
        architecture="synthetic",
    )
