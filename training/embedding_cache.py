"""Embeddings by architecture and content hash, one small file each, so nothing is embedded
twice: not by ``tulip audit`` computing embeddings itself, and not by Embed when a file only
moved (a relabel or a class rename: Embed's datum hash covers the path, so the datum runs
again, but its content is in the cache).

The cache lives under ``$TULIP_CACHE``, else ``<store>/cache/embeddings``, else the user's
cache folder. Entries are written atomically (a temporary file renamed into place), so
concurrent writers and a killed process never leave half an entry.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.layout import label_of
from pipelines.records import EmbeddingRecord

CACHE_ENV = "TULIP_CACHE"


def default_cache_dir(store_root: Path | str | None = None) -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    if store_root is not None:
        return Path(store_root) / "cache" / "embeddings"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tulip" / "embeddings"


@dataclass
class EmbeddingCache:
    """Embeddings (or unreadable reasons) by architecture and content hash, one file each."""

    root: Path

    def _path(self, architecture: str, sha256: str) -> Path:
        return self.root / architecture / sha256[:2] / f"{sha256}.json"

    def get(self, architecture: str, sha256: str) -> dict | None:
        try:
            return json.loads(self._path(architecture, sha256).read_text())
        except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
            return None

    def put(self, architecture: str, sha256: str, entry: dict) -> None:
        path = self._path(architecture, sha256)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "w") as f:
            json.dump(entry, f)
        os.replace(tmp, path)

    def record(
        self, architecture: str, sha256: str, *, path: str, size: int
    ) -> EmbeddingRecord | None:
        """The record of the file at repo ``path`` from the cache, if its content is there."""
        entry = self.get(architecture, sha256)
        return None if entry is None else record_from_entry(entry, path, sha256, size, architecture)

    def keep(self, record: EmbeddingRecord) -> None:
        self.put(record.architecture, record.sha256, cache_entry(record))


def cache_entry(r: EmbeddingRecord) -> dict:
    return {
        "status": r.status,
        "reason": r.reason,
        "image": r.image,
        "embedding": None if r.embedding is None else [float(v) for v in r.embedding],
    }


def record_from_entry(
    entry: dict, repo_path: str, sha: str, size: int, architecture: str
) -> EmbeddingRecord:
    vec = (
        None if entry.get("embedding") is None else np.asarray(entry["embedding"], dtype=np.float32)
    )
    return EmbeddingRecord(
        path=repo_path,
        label=label_of(repo_path),
        sha256=sha,
        size=size,
        architecture=architecture,
        status=entry["status"],
        reason=entry.get("reason"),
        image=entry.get("image"),
        embedding=vec,
    )
