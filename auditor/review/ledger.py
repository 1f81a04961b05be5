"""The review ledger: the repo ``tulip_reviews``, one commit per review, on either backend.

It holds two things, both versioned by the repo's history:

* the record of each review, ``/reviews/<data repo>/<audited commit>/<review id>.json``
  (``tulip.review/v1``): the audit, every decision, who made them, and the fix commit;
* the accept and defer decisions by content, ``/ledger/<sha256[:2]>.jsonl``: one line per
  (content hash, check), the latest decision winning. A later audit withholds a per-file
  finding whose files were all accepted with this content and this label.

A review that changes files lands in two steps: its record and ledger lines first, naming the
fix commit that is still open, then the fix commit (``auditor.review.apply``). A record whose
fix commit never landed (the apply was killed in between) is void: every read here checks
that the fix exists, so nothing half-written ever counts. Concurrent reviews serialise on the
ledger's head (``expect_head``) and retry.

This module is the ledger's one writer (:func:`record_review`); the reads are
:func:`reviews_of`, :func:`list_reviews` and :func:`load_ledger`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from pipelines.backend import Backend
from pipelines.errors import (
    BranchMoved,
    BranchNotFound,
    CommitNotFound,
    FileNotFound,
    RepoExists,
    RepoNotFound,
)
from pipelines.layout import (
    LEDGER_DIR,
    REVIEWS_DIR,
    REVIEWS_REPO,
    MalformedDocument,
    parse_json,
    read_optional,
)

RETRIES = 20


@dataclass(frozen=True)
class LedgerEntry:
    """An accept or defer decision on one content hash, for one check."""

    sha256: str
    action: str  # "accept" or "defer"
    check: str
    label: str  # the class the file has once the review landed
    path: str
    finding: str
    review: str
    by: str
    time: str
    fix: dict | None = None  # {"repo", "commit"} of the fix it came with, if the review had one

    @property
    def key(self) -> tuple[str, str]:
        return (self.sha256, self.check)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict) -> LedgerEntry:
        return cls(**{k: d.get(k) for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class ReviewRecord:
    document: dict
    path: str
    commit: str  # the ledger commit that recorded it

    @property
    def id(self) -> str:
        return str(self.document.get("id"))

    @property
    def fix(self) -> dict | None:
        fix = self.document.get("fix")
        return fix if isinstance(fix, dict) and fix.get("commit") else None


def record_path(data_repo: str, data_commit: str, review_id: str) -> str:
    return f"{REVIEWS_DIR}/{data_repo}/{data_commit}/{review_id}.json"


def shard_path(sha256: str) -> str:
    return f"{LEDGER_DIR}/{sha256[:2]}.jsonl"


def _head(backend: Backend) -> str | None:
    try:
        return backend.inspect_branch(REVIEWS_REPO, "master").head
    except (RepoNotFound, BranchNotFound):
        return None


def _ensure_repo(backend: Backend) -> None:
    try:
        backend.inspect_repo(REVIEWS_REPO)
    except RepoNotFound:
        with contextlib.suppress(RepoExists):  # made meanwhile by another review
            backend.create_repo(
                REVIEWS_REPO, description="review decisions on audit findings, by Tulip"
            )


def _read_shard(backend: Backend, head: str | None, path: str) -> list[LedgerEntry]:
    if head is None:
        return []
    raw = read_optional(backend, REVIEWS_REPO, head, path)
    if raw is None:
        return []
    out = []
    for line in raw.decode("utf-8", "replace").splitlines():
        with contextlib.suppress(ValueError, TypeError):
            if line.strip():
                out.append(LedgerEntry.from_dict(json.loads(line)))
    return out


def record_review(backend: Backend, record: dict, entries: Iterable[LedgerEntry]) -> str:
    """Write one review's record and its ledger lines as one commit of ``tulip_reviews``;
    returns the commit. Lines replace earlier ones of the same (content, check)."""
    entries = list(entries)
    data = record["data"]
    path = record_path(data["repo"], data["commit"], record["id"])
    body = json.dumps(record, indent=2, sort_keys=True, default=str).encode()
    by_shard: dict[str, list[LedgerEntry]] = {}
    for e in entries:
        by_shard.setdefault(shard_path(e.sha256), []).append(e)
    _ensure_repo(backend)
    for _attempt in range(RETRIES):
        head = _head(backend)
        shards = {}
        for shard, new in by_shard.items():
            merged = {e.key: e for e in _read_shard(backend, head, shard)}
            merged.update({e.key: e for e in new})
            lines = [merged[k].to_json() for k in sorted(merged)]
            shards[shard] = ("\n".join(lines) + "\n").encode()
        try:
            with backend.start_commit(
                REVIEWS_REPO,
                "master",
                description=record.get("description") or f"review {record['id']}",
                expect_head=head,
            ) as w:
                w.put_bytes(path, body)
                for shard, raw in sorted(shards.items()):
                    w.put_bytes(shard, raw)
            return w.id
        except BranchMoved:
            continue  # another review landed meanwhile: merge with it and try again
    raise BranchMoved(f"{REVIEWS_REPO} kept moving under {RETRIES} attempts to record a review")


class _Landed:
    """Whether a review's fix commit exists (looked up once per fix commit)."""

    def __init__(self, backend: Backend):
        self.backend = backend
        self._known: dict[tuple[str, str], bool] = {}

    def __call__(self, fix: dict | None) -> bool:
        if not fix:
            return True  # accept and defer only: the ledger commit was the whole review
        key = (str(fix.get("repo")), str(fix.get("commit")))
        if key not in self._known:
            try:
                c = self.backend.inspect_commit(*key)
                self._known[key] = c.finished is not None and not c.error
            except (CommitNotFound, RepoNotFound):
                self._known[key] = False
        return self._known[key]


def _records(backend: Backend, head: str, folder: str) -> list[ReviewRecord]:
    try:
        files = [f for f in backend.walk_files(REVIEWS_REPO, head, folder) if f.type == "file"]
    except FileNotFound:
        return []
    out = []
    for f in files:
        raw = read_optional(backend, REVIEWS_REPO, head, f.path)
        if raw is None:
            continue
        try:
            doc = parse_json(raw, source=f"{REVIEWS_REPO}@{head}:{f.path}")
        except MalformedDocument:
            continue  # put there by hand: the ledger is only written by record_review
        out.append(ReviewRecord(doc, f.path, head))
    return out


def _landed_records(backend: Backend, records: list[ReviewRecord]) -> list[ReviewRecord]:
    landed = _Landed(backend)
    kept = [r for r in records if landed(r.fix)]
    return sorted(kept, key=lambda r: (str(r.document.get("time")), r.id))


def reviews_of(backend: Backend, data_repo: str, data_commit: str) -> list[ReviewRecord]:
    """The reviews (that landed) of audits of one data commit, oldest first."""
    head = _head(backend)
    if head is None:
        return []
    return _landed_records(
        backend, _records(backend, head, f"{REVIEWS_DIR}/{data_repo}/{data_commit}")
    )


def list_reviews(backend: Backend) -> list[ReviewRecord]:
    """Every review that landed, oldest first (for the lineage graph)."""
    head = _head(backend)
    if head is None:
        return []
    return _landed_records(backend, _records(backend, head, REVIEWS_DIR))


def load_ledger(
    backend: Backend, hashes: Iterable[str] | None = None
) -> dict[str, list[LedgerEntry]]:
    """The ledger's entries (of reviews that landed) by content hash; only the shards of
    ``hashes`` are read when given (at most 256 reads, whatever the number of images)."""
    head = _head(backend)
    if head is None:
        return {}
    wanted = None if hashes is None else {h for h in hashes if h}
    if wanted is None:
        try:
            shards = [f.path for f in backend.walk_files(REVIEWS_REPO, head, LEDGER_DIR)]
        except FileNotFound:
            return {}
    else:
        shards = sorted({shard_path(h) for h in wanted})
    landed = _Landed(backend)
    out: dict[str, list[LedgerEntry]] = {}
    for shard in shards:
        for e in _read_shard(backend, head, shard):
            if (wanted is None or e.sha256 in wanted) and landed(e.fix):
                out.setdefault(e.sha256, []).append(e)
    return out
