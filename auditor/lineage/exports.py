"""The ledger of mobile exports: the repo ``tulip_exports``, one commit of ``/exports/<id>.json``
per export. This module owns it: ``record_export`` is its one write (``mobile`` calls it after
the files reach the apps), ``list_exports`` its read (for the lineage graph and ``tulip identify``).
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import uuid
from dataclasses import dataclass

from pipelines.backend import Backend
from pipelines.errors import BranchNotFound, FileNotFound, RepoExists, RepoNotFound, TulipError
from pipelines.info import iso
from pipelines.layout import EXPORTS_DIR, EXPORTS_REPO, MalformedDocument, read_json

_EXPORT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


class InvalidExportRecord(TulipError):
    """An export record without a usable id or model."""


@dataclass(frozen=True)
class ExportRecord:
    document: dict
    path: str  # /exports/<id>.json
    commit: str  # the ledger commit that recorded it

    @property
    def id(self) -> str:
        return self.document["id"]


def record_export(backend: Backend, export: dict, *, exports_repo: str = EXPORTS_REPO) -> str:
    """Record one mobile export as a commit of ``/exports/<id>.json``; returns the export ID.

    The repo is created on first use. The record lands atomically (one commit) or not at all.
    """
    if not isinstance(export, dict):
        raise TypeError(f"an export record is a dict, not {type(export).__name__}")
    doc = dict(export)
    doc.setdefault("id", uuid.uuid4().hex)
    export_id = str(doc["id"])
    if not _EXPORT_ID.match(export_id) or ".." in export_id:
        raise InvalidExportRecord(
            f"export id {export_id!r} is not allowed: use letters, digits, '_', '-' and '.'"
        )
    model = doc.get("model")
    if not isinstance(model, dict) or not model.get("repo") or not model.get("commit"):
        raise InvalidExportRecord(
            f"export {export_id} names no model; give model={{'repo': ..., 'commit': ...}}"
        )
    doc.setdefault("audit", None)
    doc.setdefault("forced", False)
    doc.setdefault("reason", None)
    doc.setdefault("targets", [])
    doc.setdefault("time", iso(time.time()))
    try:
        backend.inspect_repo(exports_repo)
    except RepoNotFound:
        with contextlib.suppress(RepoExists):  # created meanwhile by another process
            backend.create_repo(exports_repo, description="mobile exports recorded by Tulip")
    data = json.dumps(doc, indent=2, sort_keys=True, default=str).encode()
    with backend.start_commit(
        exports_repo,
        "master",
        description=f"export {export_id} of {model['repo']}@{model['commit']}",
    ) as w:
        w.put_bytes(f"{EXPORTS_DIR}/{export_id}.json", data)
    return export_id


def list_exports(backend: Backend, *, exports_repo: str = EXPORTS_REPO) -> list[ExportRecord]:
    """Every export recorded, oldest first; none before the first export.

    A record that is not a JSON object with an ``id`` is skipped: the ledger is only written
    by ``record_export``, so such a file was put there by hand.
    """
    try:
        head = backend.inspect_branch(exports_repo, "master").head
    except (RepoNotFound, BranchNotFound):  # no exports recorded yet
        return []
    if head is None:
        return []
    try:
        files = [f for f in backend.walk_files(exports_repo, head, EXPORTS_DIR) if f.type == "file"]
    except FileNotFound:
        return []
    recorded = backend.introduced_by(exports_repo, head, [f.path for f in files]) if files else {}
    found = []
    for f in files:
        try:
            doc = read_json(backend, exports_repo, head, f.path)
        except MalformedDocument:
            continue
        if doc is not None and isinstance(doc.get("id"), str):
            found.append(ExportRecord(doc, f.path, recorded.get(f.path, head)))
    return sorted(found, key=lambda r: (str(r.document.get("time")), r.id))
