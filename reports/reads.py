"""The reads the pages share, through the backend interface, cached by content hash.

A JSON document in a commit (``audit.json``, ``metrics.json``, ``conversion.json``) is parsed
once per blob hash: the hash comes from ``inspect_file`` (one cheap metadata read), the parse
and whatever is derived from it are cached under it.
"""

from __future__ import annotations

from typing import Any

from pipelines.backend import Backend
from pipelines.errors import TulipError
from pipelines.info import CommitInfo, FileInfo
from pipelines.layout import (
    AUDIT,
    AUDIT_FILE,
    SPEC_SUFFIX,
    MalformedDocument,
    parse_json,
    read_json,
    stat_optional,
)
from pipelines.refs import parse_ref

from .audit_view import summarize
from .cache import LRU


def resolve(backend: Backend, repo: str, ref: str) -> CommitInfo:
    """``repo`` at a commit ID, branch or ``branch^``; bad syntax is InvalidReference (a 400)."""
    return backend.resolve(parse_ref(f"{repo}@{ref}"))


def cached_json(
    backend: Backend, repo: str, commit_id: str, path: str, cache: LRU
) -> tuple[FileInfo, Any] | None:
    """The file's info and parsed JSON, or None when absent; parsed once per blob hash.
    A malformed file is ``MalformedDocument`` (a TulipError)."""
    info = stat_optional(backend, repo, commit_id, path)
    if info is None:
        return None

    def parse() -> Any:
        return parse_json(
            backend.get_file(repo, commit_id, path), source=f"{repo}@{commit_id}:{path}"
        )

    return info, cache.get_or_make(info.hash, parse)


def audit_repos(backend: Backend) -> list[str]:
    """Pipeline output repos whose head holds an ``audit.json`` (``Audit`` first)."""
    found = []
    names = sorted({p.name for p in backend.list_pipelines()} | {AUDIT}, key=lambda n: n != AUDIT)
    for name in names:
        try:
            head = backend.inspect_branch(name, "master").head
        except TulipError:
            continue
        if head is None:
            continue
        commit = backend.inspect_commit(name, head)
        if commit.finished is not None and stat_optional(backend, name, head, AUDIT_FILE):
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
            info = stat_optional(backend, repo, c.id, AUDIT_FILE)
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
        doc = read_json(backend, repo, commit_id, AUDIT_FILE)
    except MalformedDocument:
        return {"verdict": "unreadable"}
    return summarize(doc) if doc is not None else {"verdict": "none"}


def set_member(backend: Backend, commit: CommitInfo, path: str) -> CommitInfo | None:
    """The commit of this commit's set (or provenance) that holds ``path``, itself first."""
    if commit.finished is not None and stat_optional(backend, commit.repo, commit.id, path):
        return commit
    candidates = [c for c in backend.commit_set(commit.id) if c.repo != commit.repo]
    candidates += [
        backend.inspect_commit(r.repo, r.id)
        for r in commit.direct_provenance
        if not r.repo.endswith(SPEC_SUFFIX)
    ]
    for c in candidates:
        if c.finished is not None and stat_optional(backend, c.repo, c.id, path):
            return c
    return None
