"""The 2-D embedding map when an audit document carries none: PCA of Embed's records.

The Embed commit behind an audit is found in the audit commit's provenance (the repo whose
files are embedding records). Its projection is computed once with numpy and cached on disk
under the report cache, keyed by that commit (commits are immutable).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from pipelines.backend import Backend
from pipelines.errors import TulipError
from pipelines.info import CommitInfo, CommitRef
from pipelines.layout import EMBED, SPEC_SUFFIX
from pipelines.records import SCHEMA, SUFFIX, EmbeddingRecord, collect

log = logging.getLogger(__name__)


def pca_2d(vectors: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """The first two principal components of each row, and the variance ratio they explain."""
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"need a 2-D array of embeddings, got shape {x.shape}")
    if len(x) == 0:
        return np.zeros((0, 2)), [0.0, 0.0]
    x = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    k = min(2, vt.shape[0])
    coords = x @ vt[:k].T
    if k < 2:
        coords = np.hstack([coords, np.zeros((len(x), 2 - k))])
    total = float((s**2).sum()) or 1.0
    ratio = [float(v**2 / total) for v in s[:2]] + [0.0] * (2 - len(s[:2]))
    # A deterministic sign: the largest loading of each component is positive.
    for j in range(k):
        if vt[j][np.argmax(np.abs(vt[j]))] < 0:
            coords[:, j] *= -1
    return coords, ratio


def projection_of_records(records: list[EmbeddingRecord]) -> dict:
    data = collect(records)
    coords, ratio = pca_2d(data.vectors)
    return {
        "method": "pca",
        "explained_variance": ratio,
        "points": [
            {"x": round(float(x), 5), "y": round(float(y), 5), "label": lab, "path": p}
            for (x, y), lab, p in zip(coords, data.labels, data.paths, strict=True)
        ],
    }


def is_embedding_repo(backend: Backend, ref: CommitRef) -> bool:
    for f in backend.walk_files(ref.repo, ref.id):
        if f.path.endswith(SUFFIX):
            try:
                head = json.loads(backend.get_file(ref.repo, ref.id, f.path))
            except (ValueError, TulipError):
                return False
            return isinstance(head, dict) and head.get("schema") == SCHEMA
    return False


def embedding_commit(backend: Backend, commit: CommitInfo) -> CommitRef | None:
    """The Embed commit among an audit commit's direct inputs, if any."""
    candidates = sorted(
        (p for p in commit.direct_provenance if not p.repo.endswith(SPEC_SUFFIX)),
        key=lambda p: p.repo != EMBED,
    )
    for ref in candidates:
        try:
            if is_embedding_repo(backend, ref):
                return ref
        except TulipError:
            continue
    return None


def projection_for(backend: Backend, commit: CommitInfo, cache_dir: Path) -> dict | None:
    """PCA of the embeddings behind an audit commit, cached; None when there are none."""
    ref = embedding_commit(backend, commit)
    if ref is None:
        return None
    cached = Path(cache_dir) / "projections" / f"{ref.repo}@{ref.id}.json"
    if cached.is_file():
        try:
            return json.loads(cached.read_text(encoding="utf-8"))
        except ValueError:
            log.warning("ignoring a corrupt projection cache %s", cached)
    records = [
        EmbeddingRecord.from_json(backend.get_file(ref.repo, ref.id, f.path))
        for f in backend.walk_files(ref.repo, ref.id)
        if f.path.endswith(SUFFIX)
    ]
    result = projection_of_records(records)
    result["source"] = {"repo": ref.repo, "commit": ref.id}
    cached.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cached.parent, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(result, f)
    os.replace(tmp, cached)
    return result
