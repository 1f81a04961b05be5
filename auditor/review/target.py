"""Which audit a review is of: ``AUDIT_REF`` to the audit document, its findings by id, and the
data commit it audited.

``AUDIT_REF`` is an audit commit (``Audit@<id>``, ``Audit@master``), a data commit that was
audited (``flower_photos@master``: its audit is found from the verdict metadata, or in its
commit set), or a local ``audit.json`` (what ``tulip audit -o json`` printed).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pipelines.backend import Backend
from pipelines.errors import CommitNotFound, RepoNotFound, TulipError
from pipelines.info import CommitInfo
from pipelines.layout import (
    AUDIT,
    AUDIT_FILE,
    AUDIT_KEY,
    AUDIT_SCHEMA,
    MalformedDocument,
    parse_json,
    read_audit,
    stat_optional,
)
from pipelines.refs import parse_ref

from .decisions import findings_by_id


class NoAudit(TulipError):
    """``AUDIT_REF`` names no readable audit."""


@dataclass(frozen=True)
class ReviewTarget:
    document: dict
    source: str  # "Audit@<id>" or the audit file, for messages and the record
    audit: dict | None  # {"repo", "commit"} of the audit commit; None for a file
    findings: dict[str, dict]  # by id

    @property
    def data(self) -> dict:
        return dict(self.document.get("data") or {})


def load_target(backend: Backend | None, ref: str) -> ReviewTarget:
    """The audit ``ref`` names (see the module docstring)."""
    path = Path(ref)
    if path.is_file():
        try:
            doc = parse_json(path.read_bytes(), source=str(path))
        except MalformedDocument as e:
            raise NoAudit(str(e)) from None
        return _target(doc, str(path), None)
    if backend is None:
        raise NoAudit(f"no audit file {ref}")
    commit = backend.resolve(parse_ref(ref))
    if stat_optional(backend, commit.repo, commit.id, AUDIT_FILE) is not None:
        return _of_audit_commit(backend, commit)
    audit = _audit_of_data(backend, commit)
    if audit is None:
        raise NoAudit(
            f"{commit.repo}@{commit.id} holds no {AUDIT_FILE} and no audit of it was found; "
            f"audit it (tulip audit {commit.repo}@{commit.id} -o json > audit.json) and "
            "review that file, or name the Audit commit"
        )
    return _of_audit_commit(backend, audit)


def _of_audit_commit(backend: Backend, commit: CommitInfo) -> ReviewTarget:
    name = f"{commit.repo}@{commit.id}"
    if commit.error:
        raise NoAudit(
            f"the audit job of {name} failed ({commit.error}); there is nothing to review"
        )
    doc = read_audit(backend, commit)
    if doc is None:
        raise NoAudit(f"{name}:{AUDIT_FILE} is not readable (still running, or not JSON)")
    return _target(doc, name, {"repo": commit.repo, "commit": commit.id})


def _audit_of_data(backend: Backend, commit: CommitInfo) -> CommitInfo | None:
    """The audit of a data commit: the one its verdict metadata names, else the Audit
    commit of its commit set."""
    candidates = []
    named = commit.metadata.get(AUDIT_KEY)
    if named:
        repo, _, cid = named.partition("@")
        candidates.append((repo, cid))
    candidates.append((AUDIT, commit.id))
    for repo, cid in candidates:
        try:
            c = backend.inspect_commit(repo, cid)
        except (CommitNotFound, RepoNotFound):
            continue
        if c.finished is not None and stat_optional(backend, repo, cid, AUDIT_FILE) is not None:
            doc = read_audit(backend, c)
            if doc is not None and (doc.get("data") or {}).get("commit") == commit.id:
                return c
    return None


def _target(doc: dict, source: str, audit: dict | None) -> ReviewTarget:
    if doc.get("schema") != AUDIT_SCHEMA:
        raise NoAudit(f"{source} is not a {AUDIT_SCHEMA} document (schema {doc.get('schema')!r})")
    if not isinstance(doc.get("findings"), list):
        raise NoAudit(f"{source} has no list of findings")
    return ReviewTarget(doc, source, audit, findings_by_id(doc))


def require_commit(target: ReviewTarget) -> dict:
    """The audited data commit, for what needs one (apply, export with images)."""
    data = target.data
    if not data.get("repo") or not data.get("commit"):
        raise NoAudit(
            f"{target.source} is an audit of a folder ({data.get('repo')}), not of a commit; "
            "a review applies to a data commit: audit REPO@BRANCH instead"
        )
    return data


def content_hashes(
    backend: Backend, repo: str, commit_id: str, paths: Iterable[str]
) -> dict[str, str]:
    """The sha256 of each file (the key of the review ledger and of Embed's records): the
    backend's own hashes when they are sha256, else read from the files."""
    wanted = set(paths)
    if not wanted:
        return {}
    if backend.sha256_hashes:
        if len(wanted) <= 64:
            out = {}
            for p in wanted:
                info = stat_optional(backend, repo, commit_id, p)
                if info is not None and info.hash:
                    out[p] = info.hash
            return out
        return {f.path: f.hash for f in backend.walk_files(repo, commit_id) if f.path in wanted}
    return {
        p: hashlib.sha256(backend.get_file(repo, commit_id, p)).hexdigest()
        for p in sorted(wanted)
        if stat_optional(backend, repo, commit_id, p) is not None
    }
