"""What the pipelines write and where: the names several packages share, declared once.

Every package above the base reads the same files by the same names from here: the
pipeline names of the seed (``Embed``, ``Train``, ``Audit``, ``Convert``), the files each
writes, the label rule for an image path, and the few reads they all need (a file that may
be absent, a JSON document, the audit before this one).

A pipeline's spec lives in its own repo, ``<pipeline>.spec``, as ``/spec.json`` (Pachyderm's
layout), on either backend.

**The label of an image is its top-level folder**: ``/daisy/1.jpg`` and ``/daisy/sub/1.jpg``
are both daisies (``label_of``). A class folder may hold sub-folders (by date, by source);
they never make a class of their own. A file at the top (``/notes.txt``) has no label.

Imports point one way: this module imports only ``pipelines.errors`` and ``pipelines.info``,
so every other module (the backends included) may import it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

from .errors import FileNotFound, TulipError
from .info import CommitInfo, FileInfo

SPEC_SUFFIX = ".spec"
PACHYDERM_PROJECT = "default"  # the Pachyderm project Tulip's repos and pipelines live in
SPEC_FILE = "/spec.json"

# The pipelines of the seed, by the names their specs give them (pipelines/*.json).
EMBED = "Embed"
TRAIN = "Train"
TENSORBOARD = "Tensorboard"
AUDIT = "Audit"
CONVERT = "Convert"
PIPELINES = (EMBED, TRAIN, TENSORBOARD, AUDIT, CONVERT)

# What each pipeline writes, as paths in its output repo.
MODEL_FILE = "/model.keras"  # Train: backbone + softmax head
LABELS_FILE = "/retrained_labels.txt"  # Train: one label per line, in output order
METRICS_FILE = "/metrics.json"  # Train: test accuracy, splits, the data commits
SPLITS_FILE = "/splits.json"  # Train: the split of every file
AUDIT_FILE = "/audit.json"  # Audit: the tulip.audit/v1 document (the gate reads it)
REPORT_FILE = "/report.html"  # Audit: the standalone report
TFLITE_FILE = "/optimized_graph.lite"  # Convert: the published TensorFlow Lite model
TFLITE_LABELS_FILE = "/labels.txt"  # Convert: the labels beside it
CONVERSION_FILE = "/conversion.json"  # Convert: every variant, the gate's decision
VARIANTS_DIR = "/variants"  # Convert with --keep-variants: <variant>.tflite, for old runtimes
MODEL_FILES = (MODEL_FILE, TFLITE_FILE)  # what makes an output commit a model

# The image the bundled specs name: a placeholder nothing publishes. On a cluster, build the
# Dockerfile, push it, and `tulip deploy --image REGISTRY/tulip:TAG` puts the real one in.
PLACEHOLDER_IMAGE = "tulip/tulip:0.1.0"

AUDIT_SCHEMA = "tulip.audit/v1"
GATE_BLOCKED = "gate blocked"  # the first words of a job's reason when the gate refused a model

# The ledger of mobile exports: one commit of /exports/<id>.json per export.
EXPORTS_REPO = "tulip_exports"
EXPORTS_DIR = "/exports"

# The review ledger (auditor/review/ledger.py): one commit per review. Its record is
# /reviews/<data repo>/<audited data commit>/<review id>.json; accept and defer decisions are
# kept by content hash in /ledger/<first two hex digits of the sha256>.jsonl.
REVIEWS_REPO = "tulip_reviews"
REVIEWS_DIR = "/reviews"
LEDGER_DIR = "/ledger"
REVIEW_SCHEMA = "tulip.review/v1"

# Commit metadata Tulip writes, where `tulip inspect commit` (and `pachctl inspect commit`)
# users see it: an audit's verdict on the data commit it audited (auditor/run.py), and a
# review's fix commit naming the review (auditor/review/apply.py).
VERDICT_KEY = "tulip.verdict"
AUDIT_KEY = "tulip.audit"  # "<audit repo>@<audit commit>"
REVIEW_KEY = "tulip.review"  # the review id
REVIEW_AUDIT_KEY = "tulip.review.audit"  # "<audit repo>@<audit commit>" it reviewed
REVIEW_BY_KEY = "tulip.review.by"
REVIEW_RECORD_KEY = "tulip.review.record"  # "tulip_reviews@<commit>:/reviews/..."
REVIEW_FINDINGS_KEY = "tulip.review.findings"  # JSON list of finding ids
REVIEW_DECISIONS_KEY = "tulip.review.decisions"  # JSON list (or a count past a limit)


class Backend(Protocol):
    """The reads below need only these methods of ``pipelines.backend.Backend`` (which both
    backends implement), so this module imports no backend and any module may import it."""

    def inspect_commit(self, repo: str, commit_id: str) -> CommitInfo: ...

    def list_commits(
        self, repo: str, branch: str | None = None, *, limit: int | None = None
    ) -> list[CommitInfo]: ...

    def inspect_file(self, repo: str, commit_id: str, path: str) -> FileInfo: ...

    def get_file(self, repo: str, commit_id: str, path: str) -> bytes: ...


class MalformedDocument(TulipError):
    """A JSON file a pipeline wrote that does not parse, or is not a JSON object."""


def label_of(path: str) -> str:
    """The class of an image: its top-level folder (``/daisy/sub/1.jpg`` is a daisy).

    A file at the top of the repo has no class: the empty string.
    """
    parts = path.strip("/").split("/")
    return parts[0] if len(parts) > 1 else ""


def mounted(folder: Path, path: str) -> Path:
    """Where the repo path ``path`` lives under a mounted or local copy (``/pfs/Audit``)."""
    return Path(folder) / path.lstrip("/")


def stat_optional(backend: Backend, repo: str, commit_id: str, path: str) -> FileInfo | None:
    """The file at ``path``, or None if the commit holds no file there (a directory is none).

    Only a missing file is None; a missing commit or a commit still being written is an error.
    """
    try:
        info = backend.inspect_file(repo, commit_id, path)
    except FileNotFound:
        return None
    return info if info.type == "file" else None


def read_optional(backend: Backend, repo: str, commit_id: str, path: str) -> bytes | None:
    """The bytes of ``path``, or None if the commit holds no such file."""
    try:
        return backend.get_file(repo, commit_id, path)
    except FileNotFound:
        return None


def parse_json(raw: bytes | str, *, source: str) -> dict[str, Any]:
    """A JSON object, or ``MalformedDocument`` naming ``source``."""
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as e:
        raise MalformedDocument(f"{source} is not valid JSON ({e})") from None
    if not isinstance(doc, dict):
        raise MalformedDocument(f"{source} holds a JSON {type(doc).__name__}, not an object")
    return doc


def read_json(backend: Backend, repo: str, commit_id: str, path: str) -> dict[str, Any] | None:
    """The JSON object at ``path``, None if absent; ``MalformedDocument`` if it is not one."""
    raw = read_optional(backend, repo, commit_id, path)
    if raw is None:
        return None
    return parse_json(raw, source=f"{repo}@{commit_id}:{path}")


def read_audit(backend: Backend, commit: CommitInfo) -> dict[str, Any] | None:
    """The audit document of an audit commit, or None when it holds none (or an unreadable one).

    A job that failed still carries its parent's ``audit.json`` over; that one is not this
    commit's audit, so a commit with ``error`` set has none, and neither has one still running.
    """
    if commit.finished is None or commit.error:
        return None
    try:
        return read_json(backend, commit.repo, commit.id, AUDIT_FILE)
    except MalformedDocument:
        return None


def audit_before(
    backend: Backend, audit_repo: str, audit_commit: str
) -> tuple[CommitInfo, dict] | None:
    """The audit the audit repo held before ``audit_commit``: its nearest ancestor that holds
    a readable audit of its own (for "the gate is open again")."""
    commit = backend.inspect_commit(audit_repo, audit_commit)
    while commit.parent is not None:
        commit = backend.inspect_commit(audit_repo, commit.parent)
        doc = read_audit(backend, commit)
        if doc is not None:
            return commit, doc
    return None
