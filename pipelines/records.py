"""The embedding record: the one file the Embed pipeline writes per image, and that Train and
Audit read. It lives in ``pipelines`` because it is the contract between stages.

For the input file ``/<label>/<name>`` Embed writes ``/<label>/<name>.json``; the label is the
top-level folder (``pipelines.layout.label_of``)::

    {"schema": "tulip.embedding/v1", "path": "/daisy/1.jpg", "label": "daisy",
     "sha256": "<hex of the source bytes>", "size": 1234,
     "architecture": "mobilenet_1.0_224", "status": "ok" | "unreadable",
     "reason": null | "truncated JPEG: ...", "image": {"width": 320, "height": 240, "mode": "RGB"},
     "dim": 1024, "embedding": "<base64 of little-endian float32>"}

An unreadable file still gets a record (status ``unreadable``, a reason, no embedding), so
that a ``.DS_Store`` is a finding and not a crash.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SCHEMA = "tulip.embedding/v1"
SUFFIX = ".json"


@dataclass(frozen=True)
class EmbeddingRecord:
    path: str
    label: str
    sha256: str
    size: int
    architecture: str
    status: str = "ok"
    reason: str | None = None
    image: dict | None = None
    embedding: np.ndarray | None = None

    def to_json(self) -> str:
        d = {
            "schema": SCHEMA,
            "path": self.path,
            "label": self.label,
            "sha256": self.sha256,
            "size": self.size,
            "architecture": self.architecture,
            "status": self.status,
            "reason": self.reason,
            "image": self.image,
            "dim": None if self.embedding is None else int(self.embedding.shape[0]),
            "embedding": None
            if self.embedding is None
            else base64.b64encode(np.asarray(self.embedding, dtype="<f4").tobytes()).decode(
                "ascii"
            ),
        }
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> EmbeddingRecord:
        d = json.loads(text)
        if d.get("schema") != SCHEMA:
            raise ValueError(
                f"not an embedding record (schema {d.get('schema')!r}, want {SCHEMA!r})"
            )
        vec = None
        if d.get("embedding"):
            vec = np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4").astype(np.float32)
        return cls(
            path=d["path"],
            label=d["label"],
            sha256=d["sha256"],
            size=d["size"],
            architecture=d["architecture"],
            status=d.get("status", "ok"),
            reason=d.get("reason"),
            image=d.get("image"),
            embedding=vec,
        )


def record_path(source_path: str) -> str:
    """Where the record of a source image lives in Embed's output."""
    return source_path + SUFFIX


@dataclass
class EmbeddingSet:
    """Readable images as a matrix, plus the records of the unreadable ones."""

    paths: list[str]
    labels: list[str]
    sha256: list[str]
    vectors: np.ndarray  # (n, d) float32
    architecture: str | None
    unreadable: list[EmbeddingRecord] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.labels))


def collect(records: Iterable[EmbeddingRecord]) -> EmbeddingSet:
    ok: list[EmbeddingRecord] = []
    bad: list[EmbeddingRecord] = []
    for r in records:
        (ok if r.status == "ok" and r.embedding is not None else bad).append(r)
    ok.sort(key=lambda r: r.path)
    bad.sort(key=lambda r: r.path)
    archs = {r.architecture for r in ok}
    if len(archs) > 1:
        raise ValueError(f"embeddings from several architectures are mixed: {sorted(archs)}")
    dim = ok[0].embedding.shape[0] if ok else 0
    vectors = (
        np.stack([r.embedding for r in ok]).astype(np.float32)
        if ok
        else np.zeros((0, dim), np.float32)
    )
    return EmbeddingSet(
        paths=[r.path for r in ok],
        labels=[r.label for r in ok],
        sha256=[r.sha256 for r in ok],
        vectors=vectors,
        architecture=archs.pop() if archs else None,
        unreadable=bad,
    )


def load_dir(root: Path) -> EmbeddingSet:
    """Read every record under a directory laid out as Embed's output (``/pfs/Embed``)."""
    return collect(
        EmbeddingRecord.from_json(p.read_bytes())
        for p in sorted(Path(root).rglob("*" + SUFFIX))
        if p.is_file()
    )
