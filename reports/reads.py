"""The reads the pages share, through the backend interface, cached by content hash.

A JSON document in a commit (``audit.json``, ``metrics.json``, ``conversion.json``) is parsed
once per blob hash: the hash comes from ``inspect_file`` (one cheap metadata read), the parse
and whatever is derived from it are cached under it.
"""

from __future__ import annotations

import json
from typing import Any

from pipelines.backend import Backend
from pipelines.errors import CommitConflict, FileNotFound, TulipError
from pipelines.info import CommitInfo, FileInfo
from pipelines.refs import parse_ref

from .audit_view import summarize
from .cache import LRU

AUDIT_FILE = "/audit.json"
REPORT_FILE = "/report.html"
METRICS_FILE = "/metrics.json"
CONVERSION_FILE = "/conversion.json"
LABELS_FILE = "/retrained_labels.txt"


def resolve(backend: Backend, repo: str, ref: str) -> CommitInfo:
    """``repo`` at a commit ID, branch or ``branch^``; bad syntax is InvalidReference (a 400)."""
    return backend.resolve(parse_ref(f"{repo}@{ref}"))


def try_inspect(backend: Backend, repo: str, commit_id: str, path: str) -> FileInfo | None:
    try:
        info = backend.inspect_file(repo, commit_id, path)
    except (FileNotFound, CommitConflict):
        return None
    return info if info.type == "file" else None


def read_json(
    backend: Backend, repo: str, commit_id: str, path: str, cache: LRU
) -> tuple[FileInfo, Any] | None:
    """The file's info and parsed JSON, or None when absent; a malformed file is a TulipError."""
    info = try_inspect(backend, repo, commit_id, path)
    if info is None:
        return None

    def parse() -> Any:
        try:
            return json.loads(backend.get_file(repo, commit_id, path))
        except ValueError as e:
            raise TulipError(f"{repo}@{commit_id}:{path} is not valid JSON ({e})") from None

    return info, cache.get_or_make(info.hash, parse)


def audit_repos(backend: Backend) -> list[str]:
    """Pipeline output repos whose head holds an ``audit.json`` (``Audit`` first)."""
    found = []
    names = sorted(
        {p.name for p in backend.list_pipelines()} | {"Audit"}, key=lambda n: n != "Audit"
    )
    for name in names:
        try:
            head = backend.inspect_branch(name, "master").head
        except TulipError:
            continue
        if head is not None and try_inspect(backend, name, head, AUDIT_FILE) is not None:
            found.append(name)
    return found


def audit_timeline(backend: Backend, repo: str, summaries: LRU, *, limit: int = 40) -> list[dict]:
    """The audits of one repo, newest first, each with its verdict and counts."""
    rows = []
    for c in backend.list_commits(repo, limit=limit):
        row: dict[str, Any] = {"repo": repo, "commit": c.id, "started": c.started,
                               "finished": c.finished}  # fmt: skip
        if c.finished is None:
            row.update(verdict="running")
        elif c.error:
            row.update(verdict="error", error=c.error)
        else:
            info = try_inspect(backend, repo, c.id, AUDIT_FILE)
            if info is None:
                row.update(verdict="none")
            else:
                row.update(
                    summaries.get_or_make(info.hash, lambda c=c: _summary(backend, repo, c.id))
                )
        rows.append(row)
    return rows


def _summary(backend: Backend, repo: str, commit_id: str) -> dict:
    try:
        doc = json.loads(backend.get_file(repo, commit_id, AUDIT_FILE))
    except ValueError:
        return {"verdict": "unreadable"}
    return summarize(doc) if isinstance(doc, dict) else {"verdict": "unreadable"}


def set_member(backend: Backend, commit: CommitInfo, path: str) -> CommitInfo | None:
    """The commit of this commit's set (or provenance) that holds ``path``, itself first."""
    if try_inspect(backend, commit.repo, commit.id, path):
        return commit
    candidates = [c for c in backend.commit_set(commit.id) if c.repo != commit.repo]
    candidates += [
        backend.inspect_commit(r.repo, r.id)
        for r in commit.direct_provenance
        if not r.repo.endswith(".spec")
    ]
    for c in candidates:
        if c.finished is not None and try_inspect(backend, c.repo, c.id, path):
            return c
    return None
