"""What the protocol double knows: repos, branches, commits, files, pipelines and jobs, in memory,
with the semantics of pachd 2.x (pachyderm/pachyderm, src/server/pfs/server/driver/*.go and
src/server/pps/server/api_server.go), quirks included:

- A transaction has one commit-set ID. ``StartCommit`` gives the new commit that ID and
  propagates it: every branch downstream gets an AUTO commit with the same ID
  (``propagateBranches`` in driver/branch.go).
- A new commit's ``direct_provenance`` is the head of each provenant branch, so an input that
  did not change appears under its *older* ID (``addCommit`` in driver/commit.go).
- A pipeline's output branch is provenant on its inputs and on ``<pipeline>.spec@master`` (a
  repo of type "spec"), and a ``<pipeline>.meta`` repo (type "meta") gets the same
  provenance, hence commits in the same commit sets (``StartPipeline`` in pps api_server.go).
  Spec commits hold no files: pachd keeps pipeline specs in its database.
- Creating a branch whose provenance names a branch that does not exist yet creates that
  branch with an empty AUTO commit (``fillNewBranches``).
- ``InspectCommitSet`` also returns the commits *from older sets* that the set depends on
  (``CommitSetProvenance``), and ``InspectCommit`` of ``repo@<set id>`` for a repo that has
  no commit in that set resolves to that repo's commit in the set's provenance.
- File hashes are pachd's: a hash over the file's chunk hashes, not sha256 of the bytes.
  Directory entries ("/dir/") have a hash over their children's hashes.
- There is no ``list file --history``; ``FindCommits`` walks parents and reports commits whose
  diff touches exactly the given file path.

The double does not run containers. A pipeline's job is emulated by a Python *transform*
(``transforms[pipeline](job) -> {path: bytes}``) that tests register; by default a job
writes nothing and succeeds. Datums are still computed from the globs and counted, with
skipping of datums whose hash (input paths, file hashes, pipeline salt) succeeded before.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import grpc

DEFAULT_PROJECT = "default"
USER_REPO, SPEC_REPO, META_REPO = "user", "spec", "meta"

# pfs.OriginKind, pps.JobState, pps.DatumState values (the wire enums)
ORIGIN_USER, ORIGIN_AUTO = 1, 2
JOB_CREATED, JOB_RUNNING, JOB_FAILURE, JOB_SUCCESS, JOB_KILLED, JOB_UNRUNNABLE = 1, 3, 4, 5, 6, 9
DATUM_FAILED, DATUM_SUCCESS, DATUM_SKIPPED = 1, 2, 3
FINISHED_JOB_STATES = {JOB_FAILURE, JOB_SUCCESS, JOB_KILLED, JOB_UNRUNNABLE}

GLOB_CHARS = re.compile(r"[*?\[\]{}!()@+^]")  # pfs ValidateFilename refuses these in paths
UUID_HEX = re.compile(r"^[0-9a-f]{32}$")

RepoKey = tuple[str, str, str]  # (project, name, type)
CommitKey = tuple[RepoKey, str]  # (repo, commit id)
BranchKey = tuple[RepoKey, str]  # (repo, branch name)


class Status(Exception):
    """A gRPC status to return: pachd's error code and message."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def not_found(message: str) -> Status:
    return Status(grpc.StatusCode.NOT_FOUND, message)


def failed(message: str) -> Status:
    # pachd returns most precondition failures as plain errors (code Unknown)
    return Status(grpc.StatusCode.UNKNOWN, message)


def now() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


def repo_str(key: RepoKey) -> str:
    """pfs.Repo.String(): ``project/name``, with ``.type`` for system repos."""
    project, name, kind = key
    return f"{project}/{name}" if kind == USER_REPO else f"{project}/{name}.{kind}"


def commit_str(key: CommitKey) -> str:
    return f"{repo_str(key[0])}@{key[1]}"


def clean_path(p: str) -> str:
    """pfsfile.CleanPath: '' -> '/', 'a/' -> '/a'."""
    parts = [x for x in p.split("/") if x not in ("", ".")]
    return "/" + "/".join(parts)


# -- files --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileRec:
    data: bytes
    hash: bytes  # pachd's: sha256 over the chunk hashes


def make_file(data: bytes) -> FileRec:
    # One chunk per file here; a file's hash covers its chunks' hashes (fileset File.Hash).
    chunks = [hashlib.sha256(data).digest()] if data else []
    h = hashlib.sha256()
    for c in chunks:
        h.update(c)
    return FileRec(bytes(data), h.digest())


@dataclass(frozen=True)
class Entry:
    """One entry of a commit's file tree as pachd's Source yields it: files and "/dir/"s."""

    path: str
    is_dir: bool
    size: int
    hash: bytes
    file: FileRec | None = None


def tree_entries(files: dict[str, FileRec]) -> list[Entry]:
    """Every file and directory (with "/" and "/dir/" entries, as fileset.NewDirInserter
    adds them), in path order; a directory's hash covers its children's hashes in order."""
    if not files:
        return []
    children: dict[str, list[str]] = {}
    for path in files:
        parts = path.strip("/").split("/")
        parent = "/"
        for i in range(len(parts) - 1):
            d = "/" + "/".join(parts[: i + 1]) + "/"
            children.setdefault(parent, [])
            if d not in children[parent]:
                children[parent].append(d)
            parent = d
        children.setdefault(parent, []).append(path)
    infos: dict[str, Entry] = {}

    def visit(path: str) -> Entry:
        if not path.endswith("/"):
            f = files[path]
            e = Entry(path, False, len(f.data), f.hash, f)
        else:
            kids = [visit(c) for c in sorted(children.get(path, []))]
            h = hashlib.sha256()
            for k in kids:
                h.update(k.hash)
            e = Entry(path, True, sum(k.size for k in kids), h.digest())
        infos[path] = e
        return e

    visit("/")
    return [infos[p] for p in sorted(infos)]


def under(entries: list[Entry], p: str) -> list[Entry]:
    """Entries at or under a cleaned path (WalkFile/InspectFile's filter)."""
    p = "" if p == "/" else p
    return [e for e in entries if e.path == p or e.path.startswith(p + "/")]


def children_of(entries: list[Entry], name: str) -> list[Entry]:
    """ListFile: the file itself, or a directory's immediate children (not the dir)."""
    dir_name = name if name.endswith("/") else name + "/"
    out = []
    for e in entries:
        if e.path == dir_name:
            continue
        if e.path != name and not e.path.startswith(dir_name):
            continue
        rel = e.path[len(name) :].strip("/")
        if "/" not in rel:
            out.append(e)
    return out


def glob_regex(glob: str) -> re.Pattern:
    """A pfs glob ('*' stays within one path segment) as a regex on cleaned paths."""
    out = []
    i = 0
    while i < len(glob):
        c = glob[i]
        if c == "*":
            if glob[i : i + 2] == "**":
                out.append(".*")
                i += 2
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("^" + "".join(out) + "$")


def diff_entries(new: list[Entry], old: list[Entry]) -> Iterator[tuple[Entry | None, Entry | None]]:
    """server.NewDiffer: pairs (new, old) whose path exists on one side only or whose hash
    differs, in path order."""
    n = {e.path: e for e in new}
    o = {e.path: e for e in old}
    for path in sorted(set(n) | set(o)):
        a, b = n.get(path), o.get(path)
        if a is not None and b is not None and a.hash == b.hash:
            continue
        yield a, b


# -- records ------------------------------------------------------------------------------


@dataclass
class RepoRec:
    key: RepoKey
    created: datetime
    description: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class BranchRec:
    repo: RepoKey
    name: str
    head: str | None = None
    provenance: list[BranchKey] = field(default_factory=list)  # direct
    created: datetime = field(default_factory=now)
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> BranchKey:
        return (self.repo, self.name)


@dataclass
class CommitRec:
    repo: RepoKey
    id: str
    branch: str | None
    origin: int
    parent: str | None
    started: datetime
    seq: int
    description: str = ""
    finishing: datetime | None = None
    finished: datetime | None = None
    error: str = ""
    provenance: list[CommitKey] = field(default_factory=list)
    files: dict[str, FileRec] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    children: list[str] = field(default_factory=list)

    @property
    def key(self) -> CommitKey:
        return (self.repo, self.id)

    @property
    def size(self) -> int:
        return sum(len(f.data) for f in self.files.values())


@dataclass
class PipelineRec:
    name: str
    version: int
    spec: dict  # the request as a dict (camelCase keys)
    user_json: str
    effective_json: str
    spec_commit: str
    created: datetime
    updated: datetime
    salt: str
    stopped: bool = False
    metadata: dict[str, str] = field(default_factory=dict)
    succeeded_datums: set[str] = field(default_factory=set)
    history: list[PipelineRec] = field(default_factory=list)  # earlier versions, oldest first


@dataclass
class DatumRec:
    id: str
    state: int
    files: list[tuple[RepoKey, str, str, Entry]]  # (repo, commit id, input name, entry)


@dataclass
class JobRec:
    pipeline: str
    id: str
    version: int
    created: datetime
    seq: int
    state: int = JOB_CREATED
    reason: str = ""
    started: datetime | None = None
    finished: datetime | None = None
    data_processed: int = 0
    data_skipped: int = 0
    data_failed: int = 0
    data_total: int = 0
    datums: list[DatumRec] = field(default_factory=list)
    logs: list[tuple[str, str]] = field(default_factory=list)  # (datum id or "", message)

    @property
    def done(self) -> bool:
        return self.state in FINISHED_JOB_STATES


@dataclass
class DoubleJob:
    """What a registered transform sees: the job, its spec and its inputs' files."""

    pipeline: str
    id: str
    spec: dict
    inputs: dict[str, dict[str, bytes]]  # input name -> {path: content}, the whole input commit
    previous_output: dict[str, bytes]
    input_commits: dict[str, str] = field(default_factory=dict)  # input name -> commit ID
    logs: list[str] = field(default_factory=list)

    def log(self, message: str) -> None:
        self.logs.append(message)


Transform = Callable[[DoubleJob], dict[str, bytes]]


# -- the state ----------------------------------------------------------------------------


class PachdState:
    """pachd's PFS and PPS state with 2.x semantics; every method raises ``Status``."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.repos: dict[RepoKey, RepoRec] = {}
        self.branches: dict[BranchKey, BranchRec] = {}
        self.commits: dict[CommitKey, CommitRec] = {}
        self.pipelines: dict[str, PipelineRec] = {}
        self.jobs: dict[tuple[str, str], JobRec] = {}
        self.transforms: dict[str, Transform] = {}
        self._seq = itertools.count(1)
        self.closed = False

    # -- repos ----------------------------------------------------------------------------
    def repo(self, key: RepoKey) -> RepoRec:
        rec = self.repos.get(key)
        if rec is None:
            raise not_found(f"repo {repo_str(key)} not found")
        return rec

    def create_repo(self, key: RepoKey, description: str, update: bool) -> None:
        with self.lock:
            if not key[1]:
                raise Status(grpc.StatusCode.INVALID_ARGUMENT, "repo name must be set")
            if key in self.repos:
                if not update:
                    raise Status(
                        grpc.StatusCode.ALREADY_EXISTS, f"repo {repo_str(key)} already exists"
                    )
                self.repos[key].description = description
                return
            self.repos[key] = RepoRec(key, now(), description)

    def repo_branches(self, key: RepoKey) -> list[BranchRec]:
        return sorted((b for b in self.branches.values() if b.repo == key), key=lambda b: b.name)

    def list_repos(self, kind: str) -> list[RepoRec]:
        with self.lock:
            return [r for r in self.repos.values() if not kind or r.key[2] == kind]

    def delete_repo(self, key: RepoKey, force: bool) -> bool:
        with self.lock:
            if key not in self.repos:
                return False
            if key[2] == USER_REPO and key[1] in self.pipelines and not force:
                raise failed(
                    f"cannot delete repo {repo_str(key)}: it is the output of pipeline {key[1]}; "
                    "delete the pipeline instead"
                )
            for b in self.repo_branches(key):
                users = self.subvenant_branches(b.key, direct=True)
                if users and not force:
                    raise failed(
                        f"branch {b.name!r} of repo {repo_str(key)} has subvenance: "
                        + ", ".join(f"{repo_str(r)}@{n}" for r, n in users)
                    )
            self._remove_repo(key)
            self.changed.notify_all()
            return True

    def _remove_repo(self, key: RepoKey) -> None:
        for bk in [k for k in self.branches if k[0] == key]:
            del self.branches[bk]
        for ck in [k for k in self.commits if k[0] == key]:
            del self.commits[ck]
        for b in self.branches.values():
            b.provenance = [p for p in b.provenance if p[0] != key]
        del self.repos[key]

    # -- branches ---------------------------------------------------------------------------
    def branch(self, key: BranchKey) -> BranchRec:
        rec = self.branches.get(key)
        if rec is None:
            self.repo(key[0])
            raise not_found(f"branch {key[1]!r} not found in repo {repo_str(key[0])}")
        return rec

    def full_provenance(self, key: BranchKey) -> list[BranchKey]:
        seen: list[BranchKey] = []
        stack = list(self.branches[key].provenance) if key in self.branches else []
        while stack:
            b = stack.pop(0)
            if b in seen:
                continue
            seen.append(b)
            if b in self.branches:
                stack.extend(self.branches[b].provenance)
        return seen

    def subvenant_branches(self, key: BranchKey, *, direct: bool = False) -> list[BranchKey]:
        if direct:
            return [b.key for b in self.branches.values() if key in b.provenance]
        return [b.key for b in self.branches.values() if key in self.full_provenance(b.key)]

    def create_branch(
        self,
        key: BranchKey,
        head: CommitRec | None,
        provenance: list[BranchKey],
        set_id: str | None = None,
    ) -> str:
        """driver/branch.go CreateBranch; returns the transaction's commit-set ID."""
        with self.lock:
            self.repo(key[0])
            set_id = set_id or new_id()
            for p in provenance:
                if p[0] == key[0]:
                    raise failed(
                        f"repo {repo_str(key[0])} cannot be in the provenance of its own branch"
                    )
            self._fill_new_branches(provenance, set_id)
            rec = self.branches.get(key)
            old = list(rec.provenance) if rec else []
            if rec is None:
                rec = BranchRec(key[0], key[1])
                self.branches[key] = rec
            rec.provenance = list(dict.fromkeys(provenance))
            propagate = False
            if head is not None:
                rec.head = head.id
                propagate = True
            if rec.head is None or (set(old) != set(provenance) and provenance):
                c = self._empty_commit(key, provenance, rec.head, set_id)
                rec.head = c.id
                propagate = True
            if propagate:
                self.propagate([key], set_id)
            self.changed.notify_all()
            return set_id

    def _fill_new_branches(self, provenance: list[BranchKey], set_id: str) -> None:
        for p in provenance:
            if p in self.branches:
                continue
            self.repo(p[0])
            c = self._empty_commit(p, [], None, set_id)
            self.branches[p] = BranchRec(p[0], p[1], head=c.id)

    def _empty_commit(
        self, key: BranchKey, provenance: list[BranchKey], parent: str | None, set_id: str
    ) -> CommitRec:
        """makeEmptyCommit: closed for source branches, open for provenant (output) ones."""
        t = now()
        c = self._add_commit(key, set_id, ORIGIN_AUTO, parent, t)
        c.provenance = [(p[0], self.branches[p].head) for p in provenance if self.branches[p].head]
        if not provenance:
            c.finishing = c.finished = t
        else:
            self._maybe_job(c)
        return c

    def _add_commit(
        self, key: BranchKey, cid: str, origin: int, parent: str | None, started: datetime
    ) -> CommitRec:
        ck = (key[0], cid)
        if ck in self.commits:
            raise Status(grpc.StatusCode.ALREADY_EXISTS, f"commit {commit_str(ck)} already exists")
        files = dict(self.commits[(key[0], parent)].files) if parent else {}
        c = CommitRec(key[0], cid, key[1], origin, parent, started, next(self._seq), files=files)
        self.commits[ck] = c
        if parent:
            self.commits[(key[0], parent)].children.append(cid)
        return c

    def propagate(self, changed: list[BranchKey], set_id: str) -> list[CommitRec]:
        """propagateBranches: an AUTO commit in this set on every branch downstream."""
        seen: dict[BranchKey, BranchRec] = {}
        for b in changed:
            for s in self.subvenant_branches(b):
                seen.setdefault(s, self.branches[s])
        created = []
        for bi in sorted(seen.values(), key=lambda b: len(self.full_provenance(b.key))):
            full = self.full_provenance(bi.key)
            if len(full) == 1 and full[0][0][2] == SPEC_REPO:
                continue  # spouts
            if bi.head == set_id:
                continue
            c = self._add_commit(bi.key, set_id, ORIGIN_AUTO, bi.head, now())
            for p in bi.provenance:
                if p in seen:
                    c.provenance.append((p[0], set_id))
                elif self.branches[p].head:
                    c.provenance.append((p[0], self.branches[p].head))
            bi.head = set_id
            created.append(c)
            self._maybe_job(c)
        return created

    # -- commits ----------------------------------------------------------------------------
    def commit(self, key: CommitKey) -> CommitRec:
        rec = self.commits.get(key)
        if rec is None:
            raise not_found(f"commit {commit_str(key)} not found")
        return rec

    def resolve(self, repo: RepoKey, cid: str, branch: str | None) -> CommitRec:
        """driver ResolveCommit: IDs, branch names, '^'/'~N' ancestry, commit-set aliases."""
        with self.lock:
            self.repo(repo)
            ancestry = 0
            m = re.match(r"^(.*?)((?:\^\d*|~\d+)*)$", cid or "")
            base, suffix = (m.group(1), m.group(2)) if m else (cid, "")
            for part in re.findall(r"\^\d*|~\d+", suffix):
                ancestry += int(part[1:]) if part[1:] else 1
            if base and not UUID_HEX.match(base):
                if branch:
                    raise failed(f"invalid commit ID given with a branch ({branch}): {cid}")
                branch, base = base, ""
            if not base:
                if not branch:
                    raise failed("cannot resolve commit with no ID or branch")
                b = self.branch((repo, branch))
                if b.head is None:
                    raise not_found(f"commit {repo_str(repo)}@{branch} not found")
                base = b.head
            rec = self.commits.get((repo, base))
            if rec is None:
                rec = self._alias(repo, base)
            for _ in range(ancestry):
                if rec.parent is None:
                    raise not_found(f"commit {commit_str((repo, cid))} not found")
                rec = self.commits[(repo, rec.parent)]
            return rec

    def _alias(self, repo: RepoKey, set_id: str) -> CommitRec:
        for ck in self.set_provenance(set_id):
            if ck[0] == repo:
                return self.commits[ck]
        raise not_found(f"commit {commit_str((repo, set_id))} not found")

    def set_provenance(self, set_id: str) -> list[CommitKey]:
        """pfsdb.CommitSetProvenance: commits of older sets the set's commits depend on."""
        out: list[CommitKey] = []
        stack = [p for c in self.commits.values() if c.id == set_id for p in c.provenance]
        while stack:
            k = stack.pop(0)
            if k in out or k not in self.commits:
                continue
            if k[1] != set_id:
                out.append(k)
            stack.extend(self.commits[k].provenance)
        return out

    def subvenance(self, key: CommitKey) -> list[CommitRec]:
        return sorted(
            (c for c in self.commits.values() if key in c.provenance), key=lambda c: c.seq
        )

    def start_commit(
        self, branch: BranchKey, parent: CommitRec | None, description: str
    ) -> CommitRec:
        with self.lock:
            self.repo(branch[0])
            if not branch[1]:
                raise failed("branch must be specified")
            b = self.branches.get(branch)
            if b is not None and self.full_provenance(branch):
                raise failed(
                    f"cannot start a commit on an output branch: {repo_str(branch[0])}@{branch[1]}"
                )
            parent_id = parent.id if parent else (b.head if b else None)
            if parent_id and self.commits[(branch[0], parent_id)].finishing is None:
                raise failed(
                    f"parent commit {commit_str((branch[0], parent_id))} has not been finished"
                )
            set_id = new_id()
            c = self._add_commit(branch, set_id, ORIGIN_USER, parent_id, now())
            c.description = description
            if b is None:
                b = BranchRec(branch[0], branch[1])
                self.branches[branch] = b
            b.head = set_id
            self.propagate([branch], set_id)
            self.changed.notify_all()
            return c

    def finish_commit(self, c: CommitRec, description: str, error: str, force: bool) -> None:
        with self.lock:
            if c.finishing is not None:
                raise failed(f"commit {commit_str(c.key)} has already finished")
            if (
                not force
                and c.provenance
                and c.repo[1] in self.pipelines
                and c.repo[2] != SPEC_REPO
            ):
                raise failed(
                    "cannot finish a pipeline output or meta commit, use 'stop job' instead"
                )
            if description:
                c.description = description
            c.finishing = c.finished = now()
            c.error = error
            self.changed.notify_all()

    def list_commits(
        self, repo: RepoKey, to: CommitRec | None, from_: CommitRec | None, number: int
    ) -> list[CommitRec]:
        with self.lock:
            self.repo(repo)
            if to is None:
                out = sorted(
                    (c for c in self.commits.values() if c.repo == repo), key=lambda c: -c.seq
                )
            else:
                out, cur = [], to
                while cur is not None and (from_ is None or cur.id != from_.id):
                    out.append(cur)
                    cur = self.commits.get((repo, cur.parent)) if cur.parent else None
            return out[:number] if number else out

    def commit_set(self, set_id: str) -> list[CommitRec]:
        """InspectCommitSet: the set's commits and their older provenance, topologically."""
        with self.lock:
            members = sorted(
                (c for c in self.commits.values() if c.id == set_id), key=lambda c: c.seq
            )
            if not members:
                raise not_found(f"no commits found for commitset {set_id}")
            cis = [self.commits[k] for k in self.set_provenance(set_id)] + members
            by_key = {c.key: c for c in cis}
            visited: set[CommitKey] = set()
            out: list[CommitRec] = []

            def visit(c: CommitRec) -> None:
                if c.key in visited:
                    return
                for p in c.provenance:
                    if p in by_key and p not in visited:
                        visit(by_key[p])
                out.append(c)
                visited.add(c.key)

            for c in cis:
                visit(c)
            return out

    def wait(self, predicate: Callable[[], bool], timeout: float | None) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: predicate() or self.closed, timeout=timeout)

    def drop_commit_set(self, set_id: str) -> None:
        """DropCommitSet: only for sets whose commits are branch heads with no children."""
        with self.lock:
            members = [c for c in self.commits.values() if c.id == set_id]
            if not members:
                raise not_found(f"no commits found for commitset {set_id}")
            dependents = {c.id for m in members for c in self.subvenance(m.key) if c.id != set_id}
            if dependents:
                raise failed(
                    f"cannot squash commit set {set_id} because it has subvenant commit sets: "
                    + ", ".join(sorted(dependents))
                )
            for c in members:
                if c.repo[2] == SPEC_REPO and c.origin == ORIGIN_USER:
                    raise failed(
                        f"cannot squash commit {commit_str(c.key)} because it updated a pipeline"
                    )
                if c.children:
                    raise failed(
                        f"cannot drop commit {commit_str(c.key)}: it has children; only the head "
                        "commits of a commit set can be dropped"
                    )
            for c in sorted(members, key=lambda c: -c.seq):
                self._delete_commit(c)
            for jk in [k for k in self.jobs if k[1] == set_id]:
                del self.jobs[jk]
            self.changed.notify_all()

    def _delete_commit(self, c: CommitRec) -> None:
        for b in self.repo_branches(c.repo):
            if b.head == c.id:
                if c.parent is not None:
                    b.head = c.parent
                else:
                    e = self._empty_commit(b.key, b.provenance, None, new_id())
                    b.head = e.id
        if c.parent:
            parent = self.commits[(c.repo, c.parent)]
            parent.children = [x for x in parent.children if x != c.id]
        for other in self.commits.values():
            other.provenance = [p for p in other.provenance if p != c.key]
        del self.commits[c.key]

    def walk_provenance(
        self, start: CommitRec, max_depth: int, max_commits: int
    ) -> list[CommitRec]:
        return self._walk(
            start,
            lambda c: [self.commits[k] for k in c.provenance if k in self.commits],
            max_depth,
            max_commits,
        )

    def walk_subvenance(
        self, start: CommitRec, max_depth: int, max_commits: int
    ) -> list[CommitRec]:
        return self._walk(start, lambda c: self.subvenance(c.key), max_depth, max_commits)

    def _walk(self, start, step, max_depth, max_commits) -> list[CommitRec]:
        with self.lock:
            out: list[CommitRec] = []
            seen = {start.key}
            frontier, depth = [start], 0
            while frontier and (not max_depth or depth < max_depth):
                nxt = []
                for c in frontier:
                    for p in step(c):
                        if p.key not in seen:
                            seen.add(p.key)
                            out.append(p)
                            nxt.append(p)
                frontier, depth = nxt, depth + 1
            return out[:max_commits] if max_commits else out

    def find_commits(
        self, start: CommitRec, path: str, limit: int
    ) -> Iterator[tuple[str, CommitRec]]:
        """driver FindCommits: ('found', commit) for each commit whose diff names exactly
        ``path``, then ('last', commit) for the last commit searched."""
        path = clean_path(path)
        cur: CommitRec | None = start
        found = 0
        last = start
        while cur is not None:
            if cur.finished is None:
                raise failed(f"commit {commit_str(cur.key)} is not finished")
            parent = self.commits.get((cur.repo, cur.parent)) if cur.parent else None
            before = parent.files.get(path) if parent else None
            after = cur.files.get(path)
            last = cur
            if (before is None) != (after is None) or (
                before and after and before.hash != after.hash
            ):
                found += 1
                yield "found", cur
                if limit and found >= limit:
                    break
            cur = parent
        yield "last", last

    # -- files ------------------------------------------------------------------------------
    def modify(self, c: CommitRec, ops: Iterable[tuple[str, str, bytes]]) -> None:
        """ModifyFile: ('delete', path, b'') and ('add', path, chunk) in stream order."""
        with self.lock:
            if c.finishing is not None:
                raise failed(f"commit {commit_str(c.key)} has already finished")
            staged: dict[str, bytearray] = {}
            files = dict(c.files)
            for op, raw_path, data in ops:
                path = clean_path(raw_path)
                if op == "delete":
                    for p in [
                        p for p in files if p == path or p.startswith(path.rstrip("/") + "/")
                    ]:
                        del files[p]
                    for p in [
                        p for p in staged if p == path or p.startswith(path.rstrip("/") + "/")
                    ]:
                        del staged[p]
                    continue
                bad = GLOB_CHARS.search(path)
                if bad:
                    raise failed(
                        f"path ({path}) invalid: globbing character ({bad.group()}) not allowed in path"
                    )
                if any(ord(ch) < 0x20 or ord(ch) > 0x7E for ch in path):
                    raise failed(f"path ({path}) invalid: only printable ASCII characters allowed")
                if path not in staged:
                    staged[path] = bytearray(files[path].data if path in files else b"")
                staged[path] += data
            for p, data in staged.items():
                files[p] = make_file(bytes(data))
            c.files = files

    def open_commit(self, c: CommitRec) -> list[Entry]:
        return tree_entries(c.files)

    # -- pipelines --------------------------------------------------------------------------
    def output_branch(self, name: str) -> BranchKey:
        return ((DEFAULT_PROJECT, name, USER_REPO), "master")

    def create_pipeline(
        self, spec: dict, user_json: str, *, update: bool, reprocess: bool, dry_run: bool
    ) -> str:
        """CreatePipelineV2: validate; then, in one transaction, a spec commit, the output and
        meta repos and branches, and (by propagation) the first output commit and job."""
        from .specs import effective_json, pfs_leaves, validate

        with self.lock:
            validate(spec)
            name = spec["pipeline"]["name"]
            existing = self.pipelines.get(name)
            if existing is not None and not update:
                raise Status(grpc.StatusCode.ALREADY_EXISTS, f"pipeline {name} already exists")
            inputs = [
                (leaf, (DEFAULT_PROJECT, leaf["repo"], leaf.get("repoType") or USER_REPO))
                for leaf in pfs_leaves(spec["input"])
            ]
            for _leaf, key in inputs:
                if key not in self.repos:
                    raise not_found(f"repo {repo_str(key)} not found")
                if key[1] == name:
                    raise failed(f"pipeline {name} cannot take its own output repo as an input")
            out_key = self.output_branch(name)
            if existing is None and out_key[0] in self.repos:
                raise Status(
                    grpc.StatusCode.ALREADY_EXISTS, f"repo {repo_str(out_key[0])} already exists"
                )
            effective = effective_json(spec)
            if dry_run:
                return effective
            t = now()
            set_id = new_id()
            spec_repo = (DEFAULT_PROJECT, name, SPEC_REPO)
            meta_repo = (DEFAULT_PROJECT, name, META_REPO)
            for key in (spec_repo, out_key[0], meta_repo):
                if key not in self.repos:
                    self.repos[key] = RepoRec(
                        key, t, spec.get("description", "") if key == out_key[0] else ""
                    )
            spec_branch = (spec_repo, "master")
            sb = self.branches.setdefault(spec_branch, BranchRec(spec_repo, "master"))
            sc = self._add_commit(spec_branch, set_id, ORIGIN_USER, sb.head, t)
            sc.finishing = sc.finished = t
            sb.head = set_id
            if existing is None:
                self.pipelines[name] = PipelineRec(
                    name, 1, spec, user_json, effective, set_id, t, t, new_id()
                )
            else:
                existing.history.append(copy.copy(existing))
                existing.history[-1].history = []
                existing.version += 1
                existing.spec, existing.user_json, existing.effective_json = (
                    spec,
                    user_json,
                    effective,
                )
                existing.spec_commit, existing.updated = set_id, t
                if reprocess:
                    existing.salt = new_id()
                    existing.succeeded_datums = set()
                existing.stopped = False
            branch_prov = [(key, leaf.get("branch") or "master") for leaf, key in inputs] + [
                spec_branch
            ]
            for b in (out_key, (meta_repo, "master")):
                self.create_branch(b, None, branch_prov, set_id)
            self.propagate([spec_branch], set_id)
            self.changed.notify_all()
            return effective

    def pipeline(self, name: str) -> PipelineRec:
        rec = self.pipelines.get(name)
        if rec is None:
            raise not_found(f"pipeline {name} not found")
        return rec

    def delete_pipeline(self, name: str, *, force: bool, keep_repo: bool) -> None:
        with self.lock:
            self.pipeline(name)
            out_key = self.output_branch(name)
            users = [
                b for b in self.subvenant_branches(out_key, direct=True) if b[0][2] == USER_REPO
            ]
            if users and not force:
                raise failed(
                    f"cannot delete pipeline {name}: its output is an input of "
                    + ", ".join(repo_str(b[0]) for b in users)
                )
            for jk in [k for k in self.jobs if k[0] == name]:
                job = self.jobs[jk]
                if not job.done:
                    job.state, job.reason, job.finished = JOB_KILLED, "pipeline deleted", now()
            del self.pipelines[name]
            for kind in (SPEC_REPO, META_REPO) + (() if keep_repo else (USER_REPO,)):
                key = (DEFAULT_PROJECT, name, kind)
                if key in self.repos:
                    self._remove_repo(key)
            if keep_repo and out_key in self.branches:
                self.branches[out_key].provenance = []
            self.changed.notify_all()

    # -- jobs -------------------------------------------------------------------------------
    def _maybe_job(self, c: CommitRec) -> None:
        if c.repo[2] != USER_REPO or c.repo[1] not in self.pipelines or c.branch != "master":
            return
        p = self.pipelines[c.repo[1]]
        self.jobs[(p.name, c.id)] = JobRec(p.name, c.id, p.version, now(), next(self._seq))

    def job(self, pipeline: str, job_id: str) -> JobRec:
        rec = self.jobs.get((pipeline, job_id))
        if rec is None:
            raise not_found(f"job {pipeline}@{job_id} not found")
        return rec

    def runnable_job(
        self,
    ) -> tuple[JobRec, CommitRec, DoubleJob, list[DatumRec], list[CommitRec]] | None:
        """The oldest job whose inputs have all finished, prepared for running (under the lock)."""
        with self.lock:
            for job in sorted(self.jobs.values(), key=lambda j: j.seq):
                if job.state != JOB_CREATED or job.pipeline not in self.pipelines:
                    continue
                p = self.pipelines[job.pipeline]
                out = self.commits.get((self.output_branch(p.name)[0], job.id))
                if out is None or out.finishing is not None or p.stopped:
                    continue
                provs = [self.commits[k] for k in out.provenance if k in self.commits]
                if any(pc.finished is None for pc in provs):
                    continue
                metas = [
                    c
                    for c in self.commits.values()
                    if c.id == job.id
                    and c.repo == (DEFAULT_PROJECT, p.name, META_REPO)
                    and c.finishing is None
                ]
                broken = [pc for pc in provs if pc.error]
                if broken:
                    reason = f"unrunnable because input commit {commit_str(broken[0].key)} failed"
                    self._end_job(job, out, metas, JOB_UNRUNNABLE, reason)
                    continue
                job.state, job.started = JOB_RUNNING, now()
                spec = copy.deepcopy(p.spec)
                inputs, commits, datums = self._job_inputs(spec, out, p.salt)
                prev_files = dict(self.commits[(out.repo, out.parent)].files) if out.parent else {}
                dj = DoubleJob(
                    p.name,
                    job.id,
                    spec,
                    {
                        name: {path: f.data for path, f in files.items()}
                        for name, files in inputs.items()
                    },
                    {path: f.data for path, f in prev_files.items()},
                    commits,
                )
                return job, out, dj, datums, metas
            return None

    def _job_inputs(
        self, spec: dict, out: CommitRec, salt: str
    ) -> tuple[dict, dict, list[DatumRec]]:
        from .specs import datum_groups

        by_repo = {k[0]: self.commits[k] for k in out.provenance if k in self.commits}
        inputs: dict[str, dict[str, FileRec]] = {}
        commits: dict[str, str] = {}

        def leaf_entries(leaf: dict) -> tuple[str, CommitRec | None]:
            key = (DEFAULT_PROJECT, leaf["repo"], leaf.get("repoType") or USER_REPO)
            c = by_repo.get(key)
            name = leaf.get("name") or leaf["repo"]
            inputs[name] = dict(c.files) if c else {}
            if c is not None:
                commits[name] = c.id
            return name, c

        groups = datum_groups(spec["input"], leaf_entries)
        datums = []
        for group in groups:
            h = hashlib.sha256()
            files = []
            for name, c, entry in group:
                for e in (
                    [entry]
                    if not entry.is_dir
                    else under(tree_entries(c.files), entry.path.rstrip("/"))
                ):
                    if e.is_dir:
                        continue
                    h.update(name.encode() + b"\0" + e.path.encode() + b"\0" + e.hash)
                    files.append((c.repo, c.id, name, e))
            h.update(salt.encode())
            datums.append(DatumRec(h.hexdigest(), DATUM_SUCCESS, files))
        return inputs, commits, datums

    def finish_job(
        self,
        job: JobRec,
        out: CommitRec,
        metas: list[CommitRec],
        datums: list[DatumRec],
        result: dict[str, bytes] | Exception,
        logs: list[str],
    ) -> None:
        with self.lock:
            if job.done or (out.repo, out.id) not in self.commits:
                return  # killed or dropped meanwhile
            p = self.pipelines.get(job.pipeline)
            prev = p.succeeded_datums if p else set()
            for d in datums:
                if d.id in prev:
                    d.state = DATUM_SKIPPED
            job.datums = datums
            job.data_total = len(datums)
            job.data_skipped = sum(d.state == DATUM_SKIPPED for d in datums)
            job.logs = [("", line) for line in logs]
            if isinstance(result, Exception):
                failed_datums = [d for d in datums if d.state != DATUM_SKIPPED]
                for d in failed_datums:
                    d.state = DATUM_FAILED
                job.data_failed = len(failed_datums)
                # pachd's JobInfo.reason names the failed datum; the user's stderr is in the logs
                reason = f"datum {failed_datums[0].id if failed_datums else '?'} failed"
                job.logs.append(("", str(result)))
                self._end_job(job, out, metas, JOB_FAILURE, reason)
                return
            job.data_processed = job.data_total - job.data_skipped
            out.files = {path: make_file(data) for path, data in result.items()}
            if p is not None:
                p.succeeded_datums = {d.id for d in datums}
            self._end_job(job, out, metas, JOB_SUCCESS, "")

    def _end_job(
        self, job: JobRec, out: CommitRec, metas: list[CommitRec], state: int, reason: str
    ) -> None:
        t = now()
        job.state, job.reason, job.finished = state, reason, t
        job.started = job.started or t
        if state != JOB_SUCCESS and out.parent:
            out.files = dict(
                self.commits[(out.repo, out.parent)].files
            )  # the last good output stays
        for c in [out, *metas]:
            c.finishing = c.finished = t
            c.error = reason if state != JOB_SUCCESS else ""
        self.changed.notify_all()

    def transform_for(self, pipeline: str) -> Transform:
        return self.transforms.get(pipeline, lambda job: {})

    def snapshot(self) -> str:
        """A readable dump, for debugging failing tests."""
        with self.lock:
            rows = [
                f"{commit_str(c.key)} parent={c.parent} origin={c.origin} finished={bool(c.finished)} "
                f"prov={[commit_str(p) for p in c.provenance]} files={sorted(c.files)}"
                for c in sorted(self.commits.values(), key=lambda c: c.seq)
            ]
            return "\n".join(rows)
