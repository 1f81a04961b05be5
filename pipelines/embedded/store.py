"""The embedded store: Pachyderm's data model in one SQLite file plus content-addressed blobs.

Layout of a store root::

    tulip.db        metadata (WAL mode; safe for several processes)
    objects/ab/cd…  file contents, by sha256, each stored once
    tmp/            blobs being written (renamed into objects/ when complete)
    work/, logs/    pipeline job scratch space and datum logs

Every change to the metadata is one ``BEGIN IMMEDIATE`` transaction. Blobs are written
before the transaction that references them, so a crash at any point leaves either the whole
commit or none of it; at worst some unreferenced blobs, which ``fsck`` reports and ``gc``
removes.

This module owns repos, branches and pipelines; ``commits`` the commit rows, ``manifests``
what files each commit holds, ``jobs`` the engine's queue, ``services`` the service
processes and ``outbox`` the events.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .. import specs as specmod
from ..backend import (
    Backend,
    Checkable,
    Collectable,
    CommitWriter,
    LocalBlobs,
    LocalServices,
    file_path,
    walk_tree,
)
from ..datums import enumerate_datums
from ..errors import (
    BranchMoved,
    BranchNotFound,
    CommitConflict,
    CommitNotFound,
    FileNotFound,
    InvalidPath,
    InvalidSpec,
    JobNotFound,
    PipelineCycle,
    PipelineNotFound,
    RepoExists,
    RepoNotFound,
    SourceChanged,
    TulipError,
)
from ..info import (
    AUTO,
    USER,
    BranchInfo,
    CommitInfo,
    CommitRef,
    DatumInfo,
    FileChange,
    FileInfo,
    JobInfo,
    PathCommit,
    PipelineInfo,
    RepoInfo,
)
from ..layout import SPEC_FILE, SPEC_SUFFIX
from ..objects import ObjectStore
from ..refs import COMMIT_ID, NAME_CHARS, normalize_path
from . import commits, jobs, launch, manifests, outbox, services
from .db import DB_NAME, Connection, Database, Migration, Row
from .jobs import JobQueue
from .outbox import Outbox
from .services import Services

MIGRATIONS = [
    Migration(
        "repos, branches and pipelines",
        """
        CREATE TABLE repos (
            name        TEXT PRIMARY KEY,
            type        TEXT NOT NULL CHECK (type IN ('user', 'spec')),
            description TEXT NOT NULL DEFAULT '',
            created     REAL NOT NULL,
            pipeline    TEXT
        );
        CREATE TABLE branches (
            repo TEXT NOT NULL REFERENCES repos(name) ON DELETE CASCADE,
            name TEXT NOT NULL,
            head TEXT,
            PRIMARY KEY (repo, name)
        );
        CREATE TABLE branch_provenance (
            repo        TEXT NOT NULL,
            branch      TEXT NOT NULL,
            prov_repo   TEXT NOT NULL,
            prov_branch TEXT NOT NULL,
            PRIMARY KEY (repo, branch, prov_repo, prov_branch),
            FOREIGN KEY (repo, branch) REFERENCES branches(repo, name) ON DELETE CASCADE
        );
        CREATE TABLE pipelines (
            name        TEXT PRIMARY KEY,
            spec        TEXT NOT NULL,
            version     INTEGER NOT NULL,
            spec_commit TEXT NOT NULL,
            salt        TEXT NOT NULL,
            state       TEXT NOT NULL DEFAULT 'running',
            created     REAL NOT NULL,
            updated     REAL NOT NULL
        )
        """,
    ),
]

# Every table of the store's file, by owner, in the order they are created.
COMPONENTS = {
    "store": MIGRATIONS,
    "commits": commits.MIGRATIONS,
    "manifests": manifests.MIGRATIONS,
    "jobs": jobs.MIGRATIONS,
    "services": services.MIGRATIONS,
    "outbox": outbox.MIGRATIONS,
}


def new_id() -> str:
    return uuid.uuid4().hex


class _Writer(CommitWriter):
    """Stages puts and deletes; blobs go to the object store as they come."""

    def __init__(
        self,
        store: EmbeddedStore,
        repo: str,
        branch: str,
        description: str,
        expect_head: str | None = None,
    ):
        self.store = store
        self.repo = repo
        self.branch = branch
        self.description = description
        self.expect_head = expect_head
        self.started = time.time()
        self._id = new_id()
        # Ordered operations: ("put", path, hash, size) or ("delete", path)
        self.ops: list[tuple] = []
        self.metadata: dict[str, str] = {}

    @property
    def id(self) -> str:
        return self._id

    def put_bytes(self, path: str, data: bytes) -> None:
        path = file_path(path)
        digest, size = self.store.objects.put_bytes(data)
        self.ops.append(("put", path, digest, size))

    def put_file(self, path: str, source: Path) -> None:
        path = file_path(path)
        source = Path(source)
        if source.is_symlink():
            raise InvalidPath(f"{source} is a symbolic link; put the file it points to instead")
        digest, size = self.store.objects.put_file(source)
        self.ops.append(("put", path, digest, size))

    def put_tree(self, path: str, source: Path, *, progress=None) -> int:
        count = 0
        for repo_path, readable in walk_tree(path, source):
            try:
                digest, size = self.store.objects.put_file(readable)
            except FileNotFoundError:
                raise SourceChanged(
                    f"{readable} vanished during the put; nothing was committed"
                ) from None
            self.ops.append(("put", repo_path, digest, size))
            count += 1
            if progress is not None:
                progress(size)
        return count

    def delete(self, path: str) -> None:
        self.ops.append(("delete", normalize_path(path)))

    def copy(self, path: str, source: FileInfo) -> None:
        if source.type != "file" or not source.hash:
            raise InvalidPath(f"{source.path} in {source.repo}@{source.commit} is not a file")
        self.ops.append(("put", file_path(path), source.hash, source.size))

    def set_metadata(self, metadata: dict[str, str]) -> None:
        self.metadata.update({str(k): str(v) for k, v in metadata.items()})


class EmbeddedStore(Backend, Checkable, Collectable, LocalBlobs, LocalServices):
    """SQLite metadata plus content-addressed blobs under one root directory."""

    name = "embedded"
    sha256_hashes = True

    def __init__(self, root: Path | str, *, create: bool = True):
        self.root = Path(root).absolute()
        if not self.root.exists():
            if not create:
                raise TulipError(
                    f"no Tulip store at {self.root}; create one with `tulip create repo`"
                )
            self.root.mkdir(parents=True)
        self.objects = ObjectStore(self.root)
        self.db = Database(self.root / DB_NAME)
        self.db.migrate(COMPONENTS)
        self.outbox = Outbox(self.db)
        self.services = Services(self.db, self.objects, self.root)
        self.jobs = JobQueue(self)

    def close(self) -> None:
        self.db.close()

    # -- repos ----------------------------------------------------------------------------
    def create_repo(self, name: str, *, description: str = "") -> RepoInfo:
        _check_name(name, "repo")
        with self.db.transaction() as conn:
            self._create_repo(conn, name, "user", description)
        return self.inspect_repo(name)

    def _create_repo(
        self, conn: Connection, name: str, kind: str, description: str, pipeline: str | None = None
    ) -> None:
        if conn.execute("SELECT 1 FROM repos WHERE name = ?", (name,)).fetchone():
            raise RepoExists(f"repo {name!r} already exists")
        conn.execute(
            "INSERT INTO repos(name, type, description, created, pipeline) VALUES (?,?,?,?,?)",
            (name, kind, description, time.time(), pipeline),
        )
        conn.execute("INSERT INTO branches(repo, name, head) VALUES (?, 'master', NULL)", (name,))

    def list_repos(self, *, include_specs: bool = False) -> list[RepoInfo]:
        rows = self.db.execute(
            "SELECT name FROM repos "
            + ("" if include_specs else "WHERE type = 'user' ")
            + "ORDER BY created DESC"
        ).fetchall()
        return [self.inspect_repo(r["name"]) for r in rows]

    def inspect_repo(self, name: str) -> RepoInfo:
        row = self._require_repo(self.db.conn, name)
        branches = [
            r["name"]
            for r in self.db.execute(
                "SELECT name FROM branches WHERE repo = ? ORDER BY name", (name,)
            )
        ]
        head = self.db.execute(
            "SELECT head FROM branches WHERE repo = ? AND name = 'master'", (name,)
        ).fetchone()
        size = 0
        if head and head["head"]:
            c = commits.row(self.db.conn, name, head["head"])
            size = c["size_bytes"] if c else 0
        return RepoInfo(
            name=name,
            type=row["type"],
            created=row["created"],
            description=row["description"],
            size_bytes=size,
            branches=branches,
            pipeline=row["pipeline"],
        )

    def _repo_names(self) -> list[str]:
        return [
            r[0] for r in self.db.execute("SELECT name FROM repos WHERE type='user' ORDER BY name")
        ]

    def _require_repo(self, conn: Connection, name: str) -> Row:
        row = conn.execute("SELECT * FROM repos WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise RepoNotFound(
                f"no repo {name!r}; repos: {', '.join(self._repo_names()) or '(none yet)'}"
            )
        return row

    def delete_repo(self, name: str, *, force: bool = False) -> None:
        with self.db.transaction() as conn:
            row = self._require_repo(conn, name)
            if row["pipeline"]:
                raise CommitConflict(
                    f"repo {name!r} is the output of pipeline {row['pipeline']}; "
                    f"delete the pipeline instead: tulip delete pipeline {row['pipeline']}"
                )
            users = [
                r[0]
                for r in conn.execute(
                    "SELECT DISTINCT repo FROM branch_provenance WHERE prov_repo = ?", (name,)
                )
            ]
            if users and not force:
                raise CommitConflict(
                    f"repo {name!r} is an input of {', '.join(users)}; delete those pipelines first "
                    "or pass --force"
                )
            conn.execute("DELETE FROM branch_provenance WHERE prov_repo = ?", (name,))
            conn.execute("DELETE FROM repos WHERE name = ?", (name,))

    # -- branches -------------------------------------------------------------------------
    def list_branches(self, repo: str) -> list[BranchInfo]:
        self._require_repo(self.db.conn, repo)
        names = [
            r[0]
            for r in self.db.execute(
                "SELECT name FROM branches WHERE repo = ? ORDER BY name", (repo,)
            )
        ]
        return [self.inspect_branch(repo, n) for n in names]

    def inspect_branch(self, repo: str, branch: str) -> BranchInfo:
        row = self.db.execute(
            "SELECT * FROM branches WHERE repo = ? AND name = ?", (repo, branch)
        ).fetchone()
        if row is None:
            self._require_repo(self.db.conn, repo)
            names = [
                r[0] for r in self.db.execute("SELECT name FROM branches WHERE repo = ?", (repo,))
            ]
            raise BranchNotFound(
                f"no branch {branch!r} in {repo}; branches: {', '.join(sorted(names)) or '(none)'}"
            )
        prov = [
            (r["prov_repo"], r["prov_branch"])
            for r in self.db.execute(
                "SELECT prov_repo, prov_branch FROM branch_provenance WHERE repo = ? AND branch = ? "
                "ORDER BY prov_repo",
                (repo, branch),
            )
        ]
        return BranchInfo(repo=repo, name=branch, head=row["head"], provenance=prov)

    def _head(self, conn: Connection, repo: str, branch: str) -> str | None:
        row = conn.execute(
            "SELECT head FROM branches WHERE repo = ? AND name = ?", (repo, branch)
        ).fetchone()
        return None if row is None else row["head"]

    def _set_head(self, conn: Connection, repo: str, branch: str, head: str | None) -> None:
        conn.execute(
            "UPDATE branches SET head = ? WHERE repo = ? AND name = ?", (head, repo, branch)
        )

    def create_branch(self, repo: str, branch: str, *, head: str | None = None) -> BranchInfo:
        _check_name(branch, "branch")
        with self.db.transaction() as conn:
            self._require_repo(conn, repo)
            if head is not None:
                self._commit_row(conn, repo, head)
            conn.execute(
                "INSERT INTO branches(repo, name, head) VALUES (?,?,?) "
                "ON CONFLICT(repo, name) DO UPDATE SET head = excluded.head",
                (repo, branch, head),
            )
        return self.inspect_branch(repo, branch)

    # -- commits --------------------------------------------------------------------------
    @contextmanager
    def start_commit(
        self,
        repo: str,
        branch: str = "master",
        *,
        description: str = "",
        expect_head: str | None = None,
    ) -> Iterator[_Writer]:
        _check_name(branch, "branch")
        row = self._require_repo(self.db.conn, repo)
        if row["pipeline"]:
            raise CommitConflict(
                f"repo {repo!r} is written by pipeline {row['pipeline']}; put data in its input repos instead"
            )
        writer = _Writer(self, repo, branch, description, expect_head)
        yield writer
        self._finish_user_commit(writer)

    def _finish_user_commit(self, w: _Writer) -> None:
        os.sync()  # blobs reach the disk before the metadata that names them
        with self.db.transaction() as conn:
            self._require_repo(conn, w.repo)
            if (
                conn.execute(
                    "SELECT 1 FROM branches WHERE repo = ? AND name = ?", (w.repo, w.branch)
                ).fetchone()
                is None
            ):
                conn.execute(
                    "INSERT INTO branches(repo, name, head) VALUES (?,?,NULL)", (w.repo, w.branch)
                )
            # The parent is the head when the commit lands, not when it started: two writers
            # of one branch serialise on the write lock and both commits are kept, in order.
            parent = self._head(conn, w.repo, w.branch)
            if w.expect_head is not None and parent != w.expect_head:
                raise BranchMoved(
                    f"{w.repo}@{w.branch} moved: its head is {parent}, not {w.expect_head}; "
                    "nothing was committed"
                )
            commits.insert(
                self.db, conn, w.repo, w.id, w.branch, USER, parent, w.started, w.description
            )
            if w.metadata:
                commits.set_metadata(conn, w.repo, w.id, w.metadata)
            if parent:
                manifests.copy(conn, w.repo, parent, w.id)
            manifests.apply(conn, w.repo, w.id, w.ops, branch=w.branch)
            commits.close(conn, w.repo, w.id, time.time(), manifests.size(conn, w.repo, w.id))
            self._set_head(conn, w.repo, w.branch, w.id)
            self._propagate(conn, w.id, [(w.repo, w.branch)])
        self._kick_runner()

    def _commit_row(self, conn: Connection, repo: str, cid: str) -> Row:
        row = commits.row(conn, repo, cid)
        if row is None:
            self._require_repo(conn, repo)
            raise CommitNotFound(
                f"no commit {cid} in {repo}; `tulip list commit {repo}` shows them"
            )
        return row

    def inspect_commit(self, repo: str, commit_id: str) -> CommitInfo:
        conn = self.db.conn
        return commits.info(conn, self._commit_row(conn, repo, commit_id))

    def list_commits(
        self, repo: str, branch: str | None = None, *, limit: int | None = None
    ) -> list[CommitInfo]:
        conn = self.db.conn
        self._require_repo(conn, repo)
        if branch is not None:
            self.inspect_branch(repo, branch)
        return [commits.info(conn, r) for r in commits.of_repo(conn, repo, branch, limit)]

    def commit_ids_with_prefix(self, repo: str, prefix: str, *, limit: int = 5) -> list[str]:
        conn = self.db.conn
        self._require_repo(conn, repo)
        return commits.ids_with_prefix(conn, repo, prefix, limit)

    def commit_set(self, commit_id: str) -> list[CommitInfo]:
        conn = self.db.conn
        rows = commits.of_set(conn, commit_id)
        if not rows:
            raise CommitNotFound(f"no commit set {commit_id}")
        return [commits.info(conn, r) for r in rows]

    def subvenance(self, repo: str, commit_id: str) -> list[CommitRef]:
        return commits.subvenance(self.db.conn, repo, commit_id)

    def wait_commit_set(self, commit_id: str, *, timeout: float | None = None) -> list[CommitInfo]:
        deadline = None if timeout is None else time.monotonic() + timeout
        kicked = 0.0
        while True:
            members = self.commit_set(commit_id)
            if all(c.finished is not None for c in members):
                return members
            if time.monotonic() - kicked > 5:
                self._kick_runner()  # a runner that died is replaced
                kicked = time.monotonic()
            if deadline is not None and time.monotonic() > deadline:
                pending = [f"{c.repo}@{c.id}" for c in members if c.finished is None]
                raise TimeoutError(
                    f"commit set {commit_id} not finished after {timeout}s: {', '.join(pending)}"
                )
            time.sleep(0.1)

    def set_commit_metadata(self, repo: str, commit_id: str, metadata: dict[str, str]) -> None:
        with self.db.transaction() as conn:
            self._commit_row(conn, repo, commit_id)
            commits.set_metadata(conn, repo, commit_id, metadata)

    def delete_commit(self, repo: str, commit_id: str) -> list[CommitRef]:
        """Delete a head commit and every downstream commit of its set, rewinding branches."""
        with self.db.transaction() as conn:
            row = self._commit_row(conn, repo, commit_id)
            if self._require_repo(conn, repo)["type"] == "spec":
                raise CommitConflict(
                    f"{repo}@{commit_id} is a pipeline spec; use `tulip delete pipeline`"
                )
            if row["origin"] == AUTO:
                raise CommitConflict(
                    f"{repo}@{commit_id} was made by a pipeline; delete the data commit that caused it"
                )
            members = commits.of_set(conn, commit_id, newest_first=True)
            for m in members:
                if self._head(conn, m["repo"], m["branch"]) != commit_id:
                    raise CommitConflict(
                        f"{m['repo']}@{commit_id} is not the head of {m['repo']}@{m['branch']}; "
                        "later commits build on it, so it cannot be deleted"
                    )
                if commits.children(conn, m["repo"], commit_id):
                    raise CommitConflict(
                        f"{m['repo']}@{commit_id} is the parent of other commits (another branch "
                        "builds on it), so it cannot be deleted"
                    )
            running = jobs.running_in_set(conn, commit_id)
            if running:
                raise CommitConflict(
                    f"job {running[0]}@{commit_id} is still running; wait for it "
                    f"(tulip wait commit {repo}@{commit_id}) and delete again"
                )
            deleted = []
            for m in members:
                self._set_head(conn, m["repo"], m["branch"], m["parent"])
                commits.delete(conn, m["repo"], commit_id)
                deleted.append(CommitRef(m["repo"], m["branch"], commit_id))
            jobs.delete_set(conn, commit_id)
        return deleted

    # -- triggering: one commit set across the pipeline DAG ---------------------------------
    def _downstream_pipelines(
        self, conn: Connection, changed: Iterable[tuple[str, str]]
    ) -> list[str]:
        """Pipelines whose inputs (transitively) include a changed branch, in topological order."""
        edges: dict[tuple[str, str], list[str]] = defaultdict(list)
        for r in conn.execute(
            "SELECT bp.repo, bp.prov_repo, bp.prov_branch FROM branch_provenance bp "
            "JOIN pipelines p ON p.name = bp.repo AND bp.branch = 'master'"
        ):
            edges[(r["prov_repo"], r["prov_branch"])].append(r["repo"])
        reach: set[str] = set()
        stack = list(changed)
        while stack:
            for p in edges.get(stack.pop(), []):
                if p not in reach:
                    reach.add(p)
                    stack.append((p, "master"))
        # Kahn's algorithm restricted to the reached pipelines.
        indeg = {p: 0 for p in reach}
        for (src, _b), dsts in edges.items():
            if src in reach:
                for d in dsts:
                    if d in reach:
                        indeg[d] += 1
        order: list[str] = []
        ready = sorted(p for p, d in indeg.items() if d == 0)
        while ready:
            p = ready.pop(0)
            order.append(p)
            for d in sorted(edges.get((p, "master"), [])):
                if d in indeg:
                    indeg[d] -= 1
                    if indeg[d] == 0:
                        ready.append(d)
        return order

    def _propagate(self, conn: Connection, set_id: str, changed: list[tuple[str, str]]) -> None:
        """Open an output commit and a job, in this commit set, for every pipeline downstream."""
        now = time.time()
        in_set = set(changed)
        for pipeline in self._downstream_pipelines(conn, changed):
            prow = conn.execute("SELECT * FROM pipelines WHERE name = ?", (pipeline,)).fetchone()
            if prow["state"] != "running":
                continue
            head = self._head(conn, pipeline, "master")
            commits.insert(self.db, conn, pipeline, set_id, "master", AUTO, head, now)
            for r in conn.execute(
                "SELECT prov_repo, prov_branch FROM branch_provenance WHERE repo = ? AND branch = 'master'",
                (pipeline,),
            ).fetchall():
                prov_id = set_id if (r[0], r[1]) in in_set else self._head(conn, r[0], r[1])
                if prov_id is None:
                    continue  # an input with no commits yet contributes no datums
                commits.add_provenance(conn, pipeline, set_id, r[0], r[1], prov_id)
            self._set_head(conn, pipeline, "master", set_id)
            jobs.queue(self.db, conn, pipeline, set_id, prow["version"])
            in_set.add((pipeline, "master"))

    def _kick_runner(self) -> None:
        """Start a background runner if jobs wait and none is running (as pachd would)."""
        if launch.autorun_enabled() and jobs.pending(self.db):
            launch.spawn_runner(self.root)

    # -- files ----------------------------------------------------------------------------
    def _readable_commit(self, repo: str, commit_id: str) -> Row:
        row = self._commit_row(self.db.conn, repo, commit_id)
        if row["finished"] is None:
            raise CommitConflict(
                f"commit {repo}@{commit_id} is still being written; wait for it: "
                f"tulip wait commit {repo}@{commit_id}"
            )
        return row

    def walk_files(self, repo: str, commit_id: str, path: str = "/") -> Iterator[FileInfo]:
        self._readable_commit(repo, commit_id)
        for p, h, s in manifests.walk(self.db.conn, repo, commit_id, normalize_path(path)):
            yield FileInfo(path=p, type="file", size=s, hash=h, commit=commit_id, repo=repo)

    def list_files(
        self, repo: str, commit_id: str, path: str = "/", *, recursive: bool = False
    ) -> list[FileInfo]:
        path = normalize_path(path)
        files = list(self.walk_files(repo, commit_id, path))
        if not files:
            if path == "/":
                return []
            raise FileNotFound(f"no file or directory {path} in {repo}@{commit_id}")
        if len(files) == 1 and files[0].path == path:
            return files
        if recursive:
            return files
        base = "/" if path == "/" else path + "/"
        children: dict[str, list[FileInfo]] = defaultdict(list)
        for f in files:
            name = f.path[len(base) :].split("/", 1)[0]
            children[base + name].append(f)
        out = []
        for child, members in sorted(children.items()):
            if len(members) == 1 and members[0].path == child:
                out.append(members[0])
            else:
                out.append(
                    FileInfo(
                        path=child + "/",
                        type="dir",
                        size=sum(m.size for m in members),
                        hash=None,
                        commit=commit_id,
                        repo=repo,
                    )
                )
        return out

    def inspect_file(self, repo: str, commit_id: str, path: str) -> FileInfo:
        path = normalize_path(path)
        files = list(self.walk_files(repo, commit_id, path))
        if not files:
            raise FileNotFound(f"no file or directory {path} in {repo}@{commit_id}")
        if len(files) == 1 and files[0].path == path:
            return files[0]
        return FileInfo(
            path=path,
            type="dir",
            size=sum(f.size for f in files),
            hash=None,
            commit=commit_id,
            repo=repo,
        )

    def get_file(self, repo: str, commit_id: str, path: str) -> bytes:
        info = self.inspect_file(repo, commit_id, path)
        if info.type != "file":
            raise FileNotFound(
                f"{path} in {repo}@{commit_id} is a directory; use `tulip get file -o DIR` or list file"
            )
        return self.objects.read(info.hash)

    def blob_path(self, repo: str, commit_id: str, path: str) -> Path:
        """The stored blob of a file, for zero-copy reads by local readers."""
        info = self.inspect_file(repo, commit_id, path)
        if info.type != "file":
            raise FileNotFound(f"{path} in {repo}@{commit_id} is a directory")
        return self.objects.path(info.hash)

    def copy_out(self, repo: str, commit_id: str, path: str, dest: Path) -> list[Path]:
        path = normalize_path(path)
        files = list(self.walk_files(repo, commit_id, path))
        if not files:
            raise FileNotFound(f"no file or directory {path} in {repo}@{commit_id}")
        dest = Path(dest)
        written = []
        if len(files) == 1 and files[0].path == path:
            target = dest / Path(path).name if dest.is_dir() else dest
            self.objects.copy(files[0].hash, target)
            return [target]
        base = "/" if path == "/" else path + "/"
        for f in files:
            target = dest / f.path[len(base) :]
            self.objects.copy(f.hash, target)
            written.append(target)
        return written

    def diff_files(
        self,
        repo: str,
        new_commit: str,
        old_commit: str | None,
        path: str = "/",
        *,
        old_repo: str | None = None,
        old_path: str | None = None,
    ) -> list[FileChange]:
        path = normalize_path(path)
        old_repo = old_repo or repo
        old_path = normalize_path(old_path) if old_path else path
        conn = self.db.conn
        if (
            old_commit is not None
            and (old_repo, old_path) == (repo, path)
            and self._readable_commit(repo, new_commit)
            and self._readable_commit(repo, old_commit)
            and manifests.delta_parent(conn, repo, new_commit) == old_commit
        ):  # against its parent: the commit's own changes, O(changed)
            return [
                FileChange(
                    c.path,
                    "added" if c.old is None else "deleted" if c.new is None else "modified",
                    c.old and c.old[0],
                    c.new and c.new[0],
                    c.old and c.old[1],
                    c.new and c.new[1],
                )
                for c in manifests.changes(conn, repo, new_commit, path)
            ]
        new = {
            f.path[len(path) :] if path != "/" else f.path: f
            for f in self.walk_files(repo, new_commit, path)
        }
        old = {}
        if old_commit is not None:
            old = {
                f.path[len(old_path) :] if old_path != "/" else f.path: f
                for f in self.walk_files(old_repo, old_commit, old_path)
            }
        changes = []
        prefix = "" if path == "/" else path
        for rel in sorted(set(new) | set(old)):
            n, o = new.get(rel), old.get(rel)
            shown = prefix + rel if rel else path
            if n and not o:
                changes.append(FileChange(shown, "added", None, n.hash, None, n.size))
            elif o and not n:
                changes.append(FileChange(shown, "deleted", o.hash, None, o.size, None))
            elif n.hash != o.hash:
                changes.append(FileChange(shown, "modified", o.hash, n.hash, o.size, n.size))
        return changes

    def find_commits(self, repo: str, branch_or_commit: str, path: str) -> list[PathCommit]:
        """Commits (newest first) that changed ``path`` or files under it: read from the
        commits' stored changes, so it costs the history of the path, not files x commits."""
        path = normalize_path(path)
        if COMMIT_ID.match(branch_or_commit):
            start = self.inspect_commit(repo, branch_or_commit)
        else:
            head = self.inspect_branch(repo, branch_or_commit).head
            if head is None:
                return []
            start = self.inspect_commit(repo, head)
        conn = self.db.conn
        by_commit: dict[str, list[manifests.Change]] = {}
        for cid, change in manifests.history(conn, repo, start.id, path):
            by_commit.setdefault(cid, []).append(change)
        after = sum(1 for _ in manifests.walk(conn, repo, start.id, path))
        result: list[PathCommit] = []
        for cid, changed in by_commit.items():  # newest first
            added = sum(c.old is None for c in changed)
            deleted = sum(c.new is None for c in changed)
            before = after - added + deleted
            kind = "added" if before == 0 else "deleted" if after == 0 else "modified"
            files = sorted(c.path for c in changed)
            result.append(
                PathCommit(commit=self.inspect_commit(repo, cid), change=kind, files=files)
            )
            after = before
        return result

    def introduced_by(self, repo: str, commit_id: str, paths: Iterable[str]) -> dict[str, str]:
        """For each path, the commit (walking parents) since which it has had its current hash:
        the newest change to it in the commit's history."""
        conn = self.db.conn
        self._commit_row(conn, repo, commit_id)
        wanted = {normalize_path(p) for p in paths}
        result: dict[str, str] = {}
        seen: set[str] = set()
        for cid, change in manifests.history(conn, repo, commit_id):
            if len(seen) == len(wanted):
                break
            if change.path in wanted and change.path not in seen:
                seen.add(change.path)
                if change.new is not None:
                    result[change.path] = cid
        return result

    # -- pipelines ------------------------------------------------------------------------
    def create_pipeline(
        self, spec: dict, *, update: bool = False, reprocess: bool = False, dry_run: bool = False
    ) -> PipelineInfo:
        spec = specmod.normalize(spec)
        name = specmod.spec_name(spec)
        inputs = [(i.repo, i.branch) for i in specmod.pfs_inputs(spec["input"])]
        with self.db.transaction() as conn:
            existing = conn.execute("SELECT * FROM pipelines WHERE name = ?", (name,)).fetchone()
            if existing and not update:
                raise InvalidSpec(
                    f"pipeline {name} already exists; use `tulip update pipeline -f SPEC` to change it"
                )
            if not existing and update:
                raise PipelineNotFound(f"no pipeline {name} to update; use `tulip create pipeline`")
            for repo, _branch in inputs:
                if repo == name:
                    raise PipelineCycle(
                        f"pipeline {name} lists its own output repo {name!r} as an input"
                    )
                if (
                    conn.execute(
                        "SELECT 1 FROM repos WHERE name = ? AND type = 'user'", (repo,)
                    ).fetchone()
                    is None
                ):
                    raise InvalidSpec(
                        f"spec field 'input' names repo {repo!r}, which does not exist; "
                        f"create it first (tulip create repo {repo}); repos: "
                        f"{', '.join(self._repo_names()) or '(none yet)'}"
                    )
            if existing:
                cycle = self._upstream_of(conn, inputs)
                if name in cycle:
                    raise PipelineCycle(
                        f"pipeline {name} would read from its own output through "
                        f"{' -> '.join(cycle[name])}; pipelines must form a DAG"
                    )
            elif conn.execute("SELECT pipeline FROM repos WHERE name = ?", (name,)).fetchone():
                raise RepoExists(
                    f"a repo named {name!r} already exists; a pipeline writes to a repo of its own name, "
                    "so rename the pipeline or delete the repo"
                )
            if dry_run:
                return PipelineInfo(
                    name=name,
                    spec=spec,
                    version=(existing["version"] + 1) if existing else 1,
                    spec_commit="",
                    state="dry-run",
                    created=time.time(),
                    updated=time.time(),
                    inputs=inputs,
                    description=spec.get("description") or "",
                )
            for repo, branch in inputs:
                conn.execute(
                    "INSERT OR IGNORE INTO branches(repo, name, head) VALUES (?,?,NULL)",
                    (repo, branch),
                )
            now = time.time()
            spec_repo = name + SPEC_SUFFIX
            if not existing:
                self._create_repo(conn, name, "user", spec.get("description") or "", pipeline=name)
                self._create_repo(
                    conn, spec_repo, "spec", f"spec of pipeline {name}", pipeline=name
                )
            set_id = new_id()
            parent = self._head(conn, spec_repo, "master")
            commits.insert(
                self.db,
                conn,
                spec_repo,
                set_id,
                "master",
                USER,
                parent,
                now,
                f"{'update' if existing else 'create'} pipeline {name}",
            )
            digest, size = self.objects.put_bytes(
                json.dumps(spec, indent=2, sort_keys=True).encode()
            )
            if parent:
                manifests.copy(conn, spec_repo, parent, set_id)
            manifests.write(conn, spec_repo, set_id, [(SPEC_FILE, digest, size)])
            commits.close(conn, spec_repo, set_id, now, manifests.size(conn, spec_repo, set_id))
            self._set_head(conn, spec_repo, "master", set_id)
            salt = existing["salt"] if existing and not reprocess else new_id()
            if existing:
                conn.execute(
                    "UPDATE pipelines SET spec = ?, version = version + 1, spec_commit = ?, salt = ?, "
                    "updated = ?, state = 'running' WHERE name = ?",
                    (json.dumps(spec), set_id, salt, now, name),
                )
            else:
                conn.execute(
                    "INSERT INTO pipelines(name, spec, version, spec_commit, salt, state, created, updated) "
                    "VALUES (?,?,1,?,?,'running',?,?)",
                    (name, json.dumps(spec), set_id, salt, now, now),
                )
            conn.execute(
                "DELETE FROM branch_provenance WHERE repo = ? AND branch = 'master'", (name,)
            )
            for repo, branch in [*inputs, (spec_repo, "master")]:
                conn.execute(
                    "INSERT OR IGNORE INTO branch_provenance(repo, branch, prov_repo, prov_branch) VALUES (?,?,?,?)",
                    (name, "master", repo, branch),
                )
            self._propagate(conn, set_id, [(spec_repo, "master")])
        self._kick_runner()
        return self.inspect_pipeline(name)

    def _upstream_of(self, conn: Connection, inputs: list[tuple[str, str]]) -> dict[str, list[str]]:
        """Every pipeline upstream of these inputs, with the path that reaches it."""
        found: dict[str, list[str]] = {}
        stack = [(repo, [repo]) for repo, _ in inputs]
        while stack:
            repo, path = stack.pop()
            row = conn.execute("SELECT pipeline FROM repos WHERE name = ?", (repo,)).fetchone()
            if row and row["pipeline"] and row["pipeline"] not in found:
                found[row["pipeline"]] = path
                for r in conn.execute(
                    "SELECT prov_repo FROM branch_provenance WHERE repo = ? AND branch = 'master'",
                    (repo,),
                ):
                    if not r[0].endswith(SPEC_SUFFIX):
                        stack.append((r[0], [*path, r[0]]))
        return found

    def _pipeline_info(self, row: Row) -> PipelineInfo:
        spec = json.loads(row["spec"])
        return PipelineInfo(
            name=row["name"],
            spec=spec,
            version=row["version"],
            spec_commit=row["spec_commit"],
            state=row["state"],
            created=row["created"],
            updated=row["updated"],
            inputs=[(i.repo, i.branch) for i in specmod.pfs_inputs(spec["input"])],
            description=spec.get("description") or "",
            service_url=self.services.url(row["name"]),
        )

    def list_pipelines(self) -> list[PipelineInfo]:
        return [
            self._pipeline_info(r)
            for r in self.db.execute("SELECT * FROM pipelines ORDER BY created").fetchall()
        ]

    def inspect_pipeline(self, name: str) -> PipelineInfo:
        row = self.db.execute("SELECT * FROM pipelines WHERE name = ?", (name,)).fetchone()
        if row is None:
            names = [r[0] for r in self.db.execute("SELECT name FROM pipelines ORDER BY name")]
            raise PipelineNotFound(
                f"no pipeline {name!r}; pipelines: {', '.join(names) or '(none yet)'}"
            )
        return self._pipeline_info(row)

    def pipeline_salt(self, name: str) -> str:
        """The pipeline's salt: part of every datum hash, new when a pipeline reprocesses."""
        row = self.db.execute("SELECT salt FROM pipelines WHERE name = ?", (name,)).fetchone()
        if row is None:
            self.inspect_pipeline(name)
        return row[0]

    def delete_pipeline(self, name: str) -> None:
        self.inspect_pipeline(name)
        self.services.stop(name)
        with self.db.transaction() as conn:
            users = [
                r[0]
                for r in conn.execute(
                    "SELECT DISTINCT bp.repo FROM branch_provenance bp JOIN pipelines p ON p.name = bp.repo "
                    "WHERE bp.prov_repo = ?",
                    (name,),
                )
            ]
            if users:
                raise CommitConflict(
                    f"pipeline {name} feeds {', '.join(users)}; delete those first"
                )
            jobs.kill_pipeline_jobs(conn, name, "pipeline deleted")
            conn.execute("DELETE FROM pipelines WHERE name = ?", (name,))
            jobs.forget_pipeline(conn, name)
            conn.execute("DELETE FROM repos WHERE name IN (?, ?)", (name, name + SPEC_SUFFIX))

    def set_pipeline_state(self, name: str, state: str) -> None:
        self.inspect_pipeline(name)
        with self.db.transaction() as conn:
            conn.execute("UPDATE pipelines SET state = ? WHERE name = ?", (state, name))

    # -- services -------------------------------------------------------------------------
    def stop_service(self, pipeline: str) -> bool:
        return self.services.stop(pipeline)

    def restart_service(self, pipeline: str) -> str | None:
        info = self.inspect_pipeline(pipeline)
        inputs = {}
        for pin in specmod.pfs_inputs(info.spec["input"]):
            head = self.inspect_branch(pin.repo, pin.branch).head
            if head is not None:
                inputs[pin.name] = (pin.repo, head, self.jobs.input_files(pin.repo, head))
        datums = enumerate_datums(info.spec["input"], inputs)
        return self.services.start(pipeline, info.spec, datums[0] if datums else None, "restart")

    # -- jobs and datums ------------------------------------------------------------------
    def list_jobs(self, pipeline: str | None = None, *, limit: int | None = None) -> list[JobInfo]:
        if pipeline:
            self.inspect_pipeline(pipeline)
        return jobs.list_jobs(self.db, pipeline, limit)

    def inspect_job(self, pipeline: str, job_id: str) -> JobInfo:
        return jobs.inspect_job(self.db.conn, pipeline, job_id)

    def list_datums(self, pipeline: str, job_id: str) -> list[DatumInfo]:
        return jobs.list_datums(self.db, pipeline, job_id)

    def logs(self, pipeline: str, job_id: str | None = None, datum_id: str | None = None) -> str:
        self.inspect_pipeline(pipeline)
        if job_id is None:
            latest = self.list_jobs(pipeline, limit=1)
            if not latest:
                return ""
            job_id = latest[0].id
        job_dir = self.root / "logs" / pipeline / job_id
        if datum_id:
            matches = sorted(job_dir.glob(f"{datum_id}*.log"))
            if not matches:
                raise JobNotFound(f"no log for datum {datum_id} of job {pipeline}@{job_id}")
            return matches[0].read_text(encoding="utf-8", errors="replace")
        if not job_dir.exists():
            return ""
        return "".join(
            p.read_text(encoding="utf-8", errors="replace") for p in sorted(job_dir.glob("*.log"))
        )

    # -- maintenance ----------------------------------------------------------------------
    def referenced_blobs(self) -> set[str]:
        conn = self.db.conn
        return manifests.referenced(conn) | jobs.referenced(conn)

    def fsck(self, *, verify_content: bool = False) -> list[str]:
        """Problems found, as sentences; empty means consistent."""
        conn = self.db.conn
        problems = self.db.integrity_problems()
        for r in conn.execute(
            "SELECT b.repo, b.name, b.head FROM branches b LEFT JOIN commits c "
            "ON c.repo = b.repo AND c.id = b.head WHERE b.head IS NOT NULL AND c.id IS NULL"
        ):
            problems.append(f"branch {r[0]}@{r[1]} points at missing commit {r[2]}")
        problems += commits.problems(conn)
        live = jobs.live(conn)
        for r in commits.open_rows(conn):
            if (r["repo"], r["id"]) not in live:
                problems.append(f"commit {r['repo']}@{r['id']} is open but no job will finish it")
        problems += manifests.problems(conn)
        for digest in sorted(self.referenced_blobs()):
            path = self.objects.path(digest)
            if not path.exists():
                problems.append(f"blob {digest} is referenced but missing")
            elif verify_content and not self.objects.verify(digest):
                problems.append(f"blob {digest} does not match its hash (corrupted on disk)")
        return problems

    def unreferenced(self) -> tuple[list[str], list[Path]]:
        """Blobs no commit or datum uses, and stray temporaries: what ``gc`` would remove."""
        refs = self.referenced_blobs()
        orphans = [d for d in self.objects.digests() if d not in refs]
        return orphans, self.objects.stray_temporaries()

    def gc(self) -> tuple[int, int]:
        """Remove unreferenced blobs and stray temporaries. Holds the write lock meanwhile."""
        with self.db.transaction():
            orphans, strays = self.unreferenced()
            for d in orphans:
                self.objects.remove(d)
            for p in strays:
                if time.time() - p.stat().st_mtime > 60:  # leave writers in flight alone
                    p.unlink(missing_ok=True)
        return len(orphans), len(strays)

    def __repr__(self) -> str:
        return f"EmbeddedStore({str(self.root)!r})"


def _check_name(name: str, what: str) -> None:
    if not name or any(c not in NAME_CHARS for c in name) or name.endswith(SPEC_SUFFIX):
        raise InvalidPath(
            f"{what} name {name!r} is not allowed: use letters, digits, '_', '-' and '.', "
            f"not ending in {SPEC_SUFFIX!r}"
        )
