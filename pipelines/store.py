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
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from . import specs as specmod
from .backend import Backend, CommitWriter, file_path, walk_tree
from .errors import (
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
from .info import (
    AUTO,
    JOB_CREATED,
    JOB_KILLED,
    JOB_RUNNING,
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
from .layout import SPEC_FILE, SPEC_SUFFIX
from .objects import ObjectStore
from .refs import NAME_CHARS, normalize_path
from .schema_sql import MIGRATIONS

DB_NAME = "tulip.db"
NO_AUTORUN_ENV = "TULIP_NO_AUTORUN"


def new_id() -> str:
    return uuid.uuid4().hex


def _subtree_bounds(path: str) -> tuple[str, str]:
    """Half-open range of paths strictly under ``path`` ('/a' -> ['/a/', '/a0'))."""
    prefix = "/" if path == "/" else path + "/"
    return prefix, prefix[:-1] + chr(ord("/") + 1)


class _Writer(CommitWriter):
    """Stages puts and deletes; blobs go to the object store as they come."""

    def __init__(self, store: EmbeddedStore, repo: str, branch: str, description: str):
        self.store = store
        self.repo = repo
        self.branch = branch
        self.description = description
        self.started = time.time()
        self._id = new_id()
        # Ordered operations: ("put", path, hash, size) or ("delete", path)
        self.ops: list[tuple] = []

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


class EmbeddedStore(Backend):
    """SQLite metadata plus content-addressed blobs under one root directory."""

    name = "embedded"

    def __init__(self, root: Path | str, *, create: bool = True):
        self.root = Path(root).absolute()
        if not self.root.exists():
            if not create:
                raise TulipError(
                    f"no Tulip store at {self.root}; create one with `tulip create repo`"
                )
            self.root.mkdir(parents=True)
        self.objects = ObjectStore(self.root)
        self._local = threading.local()
        self._migrate()

    # -- connection and transactions ------------------------------------------------------
    @property
    def db(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.root / DB_NAME, isolation_level=None, timeout=60)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout = 60000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: ``BEGIN IMMEDIATE`` takes the write lock up front."""
        conn = self.db
        if conn.in_transaction:  # nested: join the outer transaction
            yield conn
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _migrate(self) -> None:
        conn = self.db
        if conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS):
            return  # up to date: no write lock needed (the common case, on every open)
        with self.transaction():
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            for i, (_name, sql) in enumerate(MIGRATIONS[version:], start=version):
                for stmt in sql.split(";"):
                    if stmt.strip():
                        conn.execute(stmt)
                conn.execute(f"PRAGMA user_version = {i + 1}")

    def _next(self, conn: sqlite3.Connection, counter: str) -> int:
        conn.execute(
            "INSERT INTO counters(name, value) VALUES (?, 1) "
            "ON CONFLICT(name) DO UPDATE SET value = value + 1",
            (counter,),
        )
        return conn.execute("SELECT value FROM counters WHERE name = ?", (counter,)).fetchone()[0]

    # -- repos ----------------------------------------------------------------------------
    def create_repo(self, name: str, *, description: str = "") -> RepoInfo:
        _check_name(name, "repo")
        with self.transaction() as conn:
            self._create_repo(conn, name, "user", description)
        return self.inspect_repo(name)

    def _create_repo(
        self, conn, name: str, kind: str, description: str, pipeline: str | None = None
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
        row = self.db.execute("SELECT * FROM repos WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise RepoNotFound(
                f"no repo {name!r}; repos: {', '.join(self._repo_names()) or '(none yet)'}"
            )
        branches = [
            r["name"]
            for r in self.db.execute(
                "SELECT name FROM branches WHERE repo = ? ORDER BY name", (name,)
            )
        ]
        size = self.db.execute(
            "SELECT c.size_bytes FROM branches b JOIN commits c ON c.repo = b.repo AND c.id = b.head "
            "WHERE b.repo = ? AND b.name = 'master'",
            (name,),
        ).fetchone()
        return RepoInfo(
            name=name,
            type=row["type"],
            created=row["created"],
            description=row["description"],
            size_bytes=size[0] if size else 0,
            branches=branches,
            pipeline=row["pipeline"],
        )

    def _repo_names(self) -> list[str]:
        return [
            r[0] for r in self.db.execute("SELECT name FROM repos WHERE type='user' ORDER BY name")
        ]

    def _require_repo(self, conn, name: str) -> sqlite3.Row:
        row = conn.execute("SELECT * FROM repos WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise RepoNotFound(
                f"no repo {name!r}; repos: {', '.join(self._repo_names()) or '(none yet)'}"
            )
        return row

    def delete_repo(self, name: str, *, force: bool = False) -> None:
        with self.transaction() as conn:
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
        self._require_repo(self.db, repo)
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
            self._require_repo(self.db, repo)
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

    def create_branch(self, repo: str, branch: str, *, head: str | None = None) -> BranchInfo:
        _check_name(branch, "branch")
        with self.transaction() as conn:
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
        self, repo: str, branch: str = "master", *, description: str = ""
    ) -> Iterator[_Writer]:
        _check_name(branch, "branch")
        row = self._require_repo(self.db, repo)
        if row["pipeline"]:
            raise CommitConflict(
                f"repo {repo!r} is written by pipeline {row['pipeline']}; put data in its input repos instead"
            )
        writer = _Writer(self, repo, branch, description)
        yield writer
        self._finish_user_commit(writer)

    def _finish_user_commit(self, w: _Writer) -> None:
        os.sync()  # blobs reach the disk before the metadata that names them
        with self.transaction() as conn:
            self._require_repo(conn, w.repo)
            head_row = conn.execute(
                "SELECT head FROM branches WHERE repo = ? AND name = ?", (w.repo, w.branch)
            ).fetchone()
            if head_row is None:
                conn.execute(
                    "INSERT INTO branches(repo, name, head) VALUES (?,?,NULL)", (w.repo, w.branch)
                )
                parent = None
            else:
                parent = head_row["head"]
            self._insert_commit(
                conn, w.repo, w.id, w.branch, USER, parent, w.started, w.description
            )
            if parent:
                self._copy_manifest(conn, w.repo, parent, w.id)
            for op in w.ops:
                if op[0] == "delete":
                    self._apply_delete(conn, w.repo, w.id, op[1], w.branch)
                else:
                    self._apply_put(conn, w.repo, w.id, op[1], op[2], op[3])
            self._finish_commit_row(conn, w.repo, w.id, time.time())
            conn.execute(
                "UPDATE branches SET head = ? WHERE repo = ? AND name = ?", (w.id, w.repo, w.branch)
            )
            self._propagate(conn, w.id, [(w.repo, w.branch)])
        self._kick_runner()

    def _insert_commit(
        self, conn, repo, cid, branch, origin, parent, started, description=""
    ) -> None:
        conn.execute(
            "INSERT INTO commits(repo, id, branch, origin, parent, started, description, seq) "
            "VALUES (?,?,?,?,?,?,?,?)",
            (repo, cid, branch, origin, parent, started, description, self._next(conn, "commit")),
        )

    def _copy_manifest(self, conn, repo: str, src: str, dst: str) -> None:
        conn.execute(
            "INSERT INTO files(repo, commit_id, path, hash, size) "
            "SELECT repo, ?, path, hash, size FROM files WHERE repo = ? AND commit_id = ?",
            (dst, repo, src),
        )

    def _apply_delete(self, conn, repo: str, cid: str, path: str, branch: str) -> None:
        lo, hi = _subtree_bounds(path)
        n = conn.execute(
            "DELETE FROM files WHERE repo = ? AND commit_id = ? AND (path = ? OR (path >= ? AND path < ?))",
            (repo, cid, path, lo, hi),
        ).rowcount
        if n == 0:
            raise FileNotFound(
                f"no file or directory {path} in {repo}@{branch}; nothing was deleted"
            )

    def _apply_put(self, conn, repo: str, cid: str, path: str, digest: str, size: int) -> None:
        lo, hi = _subtree_bounds(path)
        if conn.execute(
            "SELECT 1 FROM files WHERE repo = ? AND commit_id = ? AND path >= ? AND path < ? LIMIT 1",
            (repo, cid, lo, hi),
        ).fetchone():
            raise InvalidPath(f"cannot put file {path} in {repo}: {path} is a directory there")
        parts = path.strip("/").split("/")
        ancestors = ["/" + "/".join(parts[:i]) for i in range(1, len(parts))]
        if ancestors:
            clash = conn.execute(
                f"SELECT path FROM files WHERE repo = ? AND commit_id = ? AND path IN ({','.join('?' * len(ancestors))})",
                (repo, cid, *ancestors),
            ).fetchone()
            if clash:
                raise InvalidPath(f"cannot put file {path} in {repo}: {clash[0]} is a file there")
        conn.execute(
            "INSERT OR REPLACE INTO files(repo, commit_id, path, hash, size) VALUES (?,?,?,?,?)",
            (repo, cid, path, digest, size),
        )

    def _finish_commit_row(
        self, conn, repo: str, cid: str, finished: float, error: str | None = None
    ) -> None:
        size = conn.execute(
            "SELECT COALESCE(SUM(size), 0) FROM files WHERE repo = ? AND commit_id = ?", (repo, cid)
        ).fetchone()[0]
        conn.execute(
            "UPDATE commits SET finished = ?, size_bytes = ?, error = ? WHERE repo = ? AND id = ?",
            (finished, size, error, repo, cid),
        )

    def _commit_row(self, conn, repo: str, cid: str) -> sqlite3.Row:
        row = conn.execute(
            "SELECT * FROM commits WHERE repo = ? AND id = ?", (repo, cid)
        ).fetchone()
        if row is None:
            self._require_repo(conn, repo)
            raise CommitNotFound(
                f"no commit {cid} in {repo}; `tulip list commit {repo}` shows them"
            )
        return row

    def _commit_info(self, row: sqlite3.Row) -> CommitInfo:
        prov = [
            CommitRef(r["prov_repo"], r["prov_branch"], r["prov_id"])
            for r in self.db.execute(
                "SELECT prov_repo, prov_branch, prov_id FROM commit_provenance "
                "WHERE repo = ? AND id = ? ORDER BY prov_repo",
                (row["repo"], row["id"]),
            )
        ]
        return CommitInfo(
            repo=row["repo"],
            branch=row["branch"],
            id=row["id"],
            origin=row["origin"],
            parent=row["parent"],
            started=row["started"],
            finished=row["finished"],
            size_bytes=row["size_bytes"],
            description=row["description"],
            error=row["error"],
            direct_provenance=prov,
            metadata=json.loads(row["metadata"] or "{}"),
        )

    def inspect_commit(self, repo: str, commit_id: str) -> CommitInfo:
        return self._commit_info(self._commit_row(self.db, repo, commit_id))

    def list_commits(
        self, repo: str, branch: str | None = None, *, limit: int | None = None
    ) -> list[CommitInfo]:
        self._require_repo(self.db, repo)
        sql = "SELECT * FROM commits WHERE repo = ?"
        args: list = [repo]
        if branch is not None:
            self.inspect_branch(repo, branch)
            sql += " AND branch = ?"
            args.append(branch)
        sql += " ORDER BY seq DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [self._commit_info(r) for r in self.db.execute(sql, args).fetchall()]

    def commit_set(self, commit_id: str) -> list[CommitInfo]:
        rows = self.db.execute(
            "SELECT * FROM commits WHERE id = ? ORDER BY seq", (commit_id,)
        ).fetchall()
        if not rows:
            raise CommitNotFound(f"no commit set {commit_id}")
        return [self._commit_info(r) for r in rows]

    def subvenance(self, repo: str, commit_id: str) -> list[CommitRef]:
        rows = self.db.execute(
            "SELECT p.repo, c.branch, p.id FROM commit_provenance p JOIN commits c "
            "ON c.repo = p.repo AND c.id = p.id WHERE p.prov_repo = ? AND p.prov_id = ? ORDER BY c.seq",
            (repo, commit_id),
        ).fetchall()
        return [CommitRef(r[0], r[1], r[2]) for r in rows]

    def wait_commit_set(self, commit_id: str, *, timeout: float | None = None) -> list[CommitInfo]:
        deadline = None if timeout is None else time.monotonic() + timeout
        kicked = 0.0
        while True:
            commits = self.commit_set(commit_id)
            if all(c.finished is not None for c in commits):
                return commits
            if time.monotonic() - kicked > 5:
                self._kick_runner(force=True)  # a runner that died is replaced
                kicked = time.monotonic()
            if deadline is not None and time.monotonic() > deadline:
                pending = [f"{c.repo}@{c.id}" for c in commits if c.finished is None]
                raise TimeoutError(
                    f"commit set {commit_id} not finished after {timeout}s: {', '.join(pending)}"
                )
            time.sleep(0.1)

    def set_commit_metadata(self, repo: str, commit_id: str, metadata: dict[str, str]) -> None:
        with self.transaction() as conn:
            row = self._commit_row(conn, repo, commit_id)
            merged = {
                **json.loads(row["metadata"] or "{}"),
                **{str(k): str(v) for k, v in metadata.items()},
            }
            conn.execute(
                "UPDATE commits SET metadata = ? WHERE repo = ? AND id = ?",
                (json.dumps(merged, sort_keys=True), repo, commit_id),
            )

    def delete_commit(self, repo: str, commit_id: str) -> list[CommitRef]:
        """Delete a head commit and every downstream commit of its set, rewinding branches."""
        with self.transaction() as conn:
            row = self._commit_row(conn, repo, commit_id)
            if self._require_repo(conn, repo)["type"] == "spec":
                raise CommitConflict(
                    f"{repo}@{commit_id} is a pipeline spec; use `tulip delete pipeline`"
                )
            members = conn.execute(
                "SELECT * FROM commits WHERE id = ? ORDER BY seq DESC", (commit_id,)
            ).fetchall()
            if row["origin"] == AUTO:
                raise CommitConflict(
                    f"{repo}@{commit_id} was made by a pipeline; delete the data commit that caused it"
                )
            for m in members:
                head = conn.execute(
                    "SELECT head FROM branches WHERE repo = ? AND name = ?",
                    (m["repo"], m["branch"]),
                ).fetchone()
                if head is None or head["head"] != commit_id:
                    raise CommitConflict(
                        f"{m['repo']}@{commit_id} is not the head of {m['repo']}@{m['branch']}; "
                        "later commits build on it, so it cannot be deleted"
                    )
            running = conn.execute(
                "SELECT pipeline FROM jobs WHERE id = ? AND state = ?", (commit_id, JOB_RUNNING)
            ).fetchall()
            if running:
                raise CommitConflict(
                    f"job {running[0][0]}@{commit_id} is still running; wait for it "
                    f"(tulip wait commit {repo}@{commit_id}) and delete again"
                )
            deleted = []
            for m in members:
                conn.execute(
                    "UPDATE branches SET head = ? WHERE repo = ? AND name = ?",
                    (m["parent"], m["repo"], m["branch"]),
                )
                conn.execute(
                    "DELETE FROM commits WHERE repo = ? AND id = ?", (m["repo"], commit_id)
                )
                deleted.append(CommitRef(m["repo"], m["branch"], commit_id))
            conn.execute("DELETE FROM jobs WHERE id = ?", (commit_id,))
        return deleted

    # -- triggering: one commit set across the pipeline DAG ---------------------------------
    def _downstream_pipelines(self, conn, changed: Iterable[tuple[str, str]]) -> list[str]:
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

    def _propagate(self, conn, set_id: str, changed: list[tuple[str, str]]) -> None:
        """Open an output commit and a job, in this commit set, for every pipeline downstream."""
        now = time.time()
        in_set = set(changed)
        for pipeline in self._downstream_pipelines(conn, changed):
            prow = conn.execute("SELECT * FROM pipelines WHERE name = ?", (pipeline,)).fetchone()
            if prow["state"] != "running":
                continue
            head = conn.execute(
                "SELECT head FROM branches WHERE repo = ? AND name = 'master'", (pipeline,)
            ).fetchone()["head"]
            self._insert_commit(conn, pipeline, set_id, "master", AUTO, head, now)
            for r in conn.execute(
                "SELECT prov_repo, prov_branch FROM branch_provenance WHERE repo = ? AND branch = 'master'",
                (pipeline,),
            ).fetchall():
                prov_id = (
                    set_id
                    if (r[0], r[1]) in in_set
                    else conn.execute(
                        "SELECT head FROM branches WHERE repo = ? AND name = ?", (r[0], r[1])
                    ).fetchone()["head"]
                )
                if prov_id is None:
                    continue  # an input with no commits yet contributes no datums
                conn.execute(
                    "INSERT INTO commit_provenance(repo, id, prov_repo, prov_branch, prov_id) VALUES (?,?,?,?,?)",
                    (pipeline, set_id, r[0], r[1], prov_id),
                )
            conn.execute(
                "UPDATE branches SET head = ? WHERE repo = ? AND name = 'master'",
                (set_id, pipeline),
            )
            conn.execute(
                "INSERT INTO jobs(pipeline, id, state, created, spec_version, seq) VALUES (?,?,?,?,?,?)",
                (pipeline, set_id, JOB_CREATED, now, prow["version"], self._next(conn, "job")),
            )
            in_set.add((pipeline, "master"))

    def _kick_runner(self, *, force: bool = False) -> None:
        """Start a background runner if jobs wait and none is running (as pachd would)."""
        if os.environ.get(NO_AUTORUN_ENV):
            return
        pending = self.db.execute(
            "SELECT 1 FROM jobs WHERE state IN (?, ?) LIMIT 1", (JOB_CREATED, JOB_RUNNING)
        ).fetchone()
        if not pending:
            return
        from .runner import spawn_runner

        spawn_runner(self.root)

    # -- files ----------------------------------------------------------------------------
    def _readable_commit(self, repo: str, commit_id: str) -> sqlite3.Row:
        row = self._commit_row(self.db, repo, commit_id)
        if row["finished"] is None:
            raise CommitConflict(
                f"commit {repo}@{commit_id} is still being written; wait for it: "
                f"tulip wait commit {repo}@{commit_id}"
            )
        return row

    def walk_files(self, repo: str, commit_id: str, path: str = "/") -> Iterator[FileInfo]:
        self._readable_commit(repo, commit_id)
        path = normalize_path(path)
        lo, hi = _subtree_bounds(path)
        for r in self.db.execute(
            "SELECT path, hash, size FROM files WHERE repo = ? AND commit_id = ? "
            "AND (path = ? OR (path >= ? AND path < ?)) ORDER BY path",
            (repo, commit_id, path, lo, hi),
        ).fetchall():
            yield FileInfo(
                path=r[0], type="file", size=r[2], hash=r[1], commit=commit_id, repo=repo
            )

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
        from .refs import COMMIT_ID

        path = normalize_path(path)
        if COMMIT_ID.match(branch_or_commit):
            start = self.inspect_commit(repo, branch_or_commit)
        else:
            head = self.inspect_branch(repo, branch_or_commit).head
            if head is None:
                return []
            start = self.inspect_commit(repo, head)
        result: list[PathCommit] = []
        commit: CommitInfo | None = start
        current = self._subtree(repo, commit.id, path)
        while commit is not None:
            parent = self.inspect_commit(repo, commit.parent) if commit.parent else None
            before = self._subtree(repo, parent.id, path) if parent else {}
            if current != before:
                if not before:
                    change = "added"
                elif not current:
                    change = "deleted"
                else:
                    change = "modified"
                touched = sorted(
                    p for p in set(current) | set(before) if current.get(p) != before.get(p)
                )
                result.append(PathCommit(commit=commit, change=change, files=touched))
            commit, current = parent, before
        return result

    def _subtree(self, repo: str, commit_id: str, path: str) -> dict[str, str]:
        lo, hi = _subtree_bounds(path)
        return {
            r[0]: r[1]
            for r in self.db.execute(
                "SELECT path, hash FROM files WHERE repo = ? AND commit_id = ? AND (path = ? OR (path >= ? AND path < ?))",
                (repo, commit_id, path, lo, hi),
            )
        }

    def introduced_by(self, repo: str, commit_id: str, paths: Iterable[str]) -> dict[str, str]:
        """For each path, the commit (walking parents) since which it has had its current hash."""
        paths = [normalize_path(p) for p in paths]
        chain = []
        cid: str | None = commit_id
        while cid is not None:
            row = self._commit_row(self.db, repo, cid)
            chain.append(cid)
            cid = row["parent"]
        wanted = set(paths)
        current = {p: h for p, h in self._manifest(repo, commit_id).items() if p in wanted}
        result: dict[str, str] = {}
        pending = set(current)
        for newer, older in itertools.pairwise(chain):
            if not pending:
                break
            before = self._manifest(repo, older)
            for p in list(pending):
                if before.get(p) != current[p]:
                    result[p] = newer
                    pending.discard(p)
        for p in pending:
            result[p] = chain[-1]
        return result

    def _manifest(self, repo: str, commit_id: str) -> dict[str, str]:
        return {
            r[0]: r[1]
            for r in self.db.execute(
                "SELECT path, hash FROM files WHERE repo = ? AND commit_id = ?", (repo, commit_id)
            )
        }

    # -- pipelines ------------------------------------------------------------------------
    def create_pipeline(
        self, spec: dict, *, update: bool = False, reprocess: bool = False, dry_run: bool = False
    ) -> PipelineInfo:
        spec = specmod.normalize(spec)
        name = specmod.spec_name(spec)
        inputs = [(i.repo, i.branch) for i in specmod.pfs_inputs(spec["input"])]
        with self.transaction() as conn:
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
            parent = conn.execute(
                "SELECT head FROM branches WHERE repo = ? AND name = 'master'", (spec_repo,)
            ).fetchone()["head"]
            self._insert_commit(
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
            conn.execute(
                "INSERT INTO files(repo, commit_id, path, hash, size) VALUES (?,?,?,?,?)",
                (spec_repo, set_id, SPEC_FILE, digest, size),
            )
            self._finish_commit_row(conn, spec_repo, set_id, now)
            conn.execute(
                "UPDATE branches SET head = ? WHERE repo = ? AND name = 'master'",
                (set_id, spec_repo),
            )
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

    def _upstream_of(self, conn, inputs: list[tuple[str, str]]) -> dict[str, list[str]]:
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

    def _pipeline_info(self, row: sqlite3.Row) -> PipelineInfo:
        spec = json.loads(row["spec"])
        svc = self.db.execute(
            "SELECT url, state FROM services WHERE pipeline = ?", (row["name"],)
        ).fetchone()
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
            service_url=svc["url"] if svc and svc["state"] == "running" else None,
        )

    def list_pipelines(self) -> list[PipelineInfo]:
        return [
            self._pipeline_info(r)
            for r in self.db.execute("SELECT * FROM pipelines ORDER BY created")
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
        return self.db.execute("SELECT salt FROM pipelines WHERE name = ?", (name,)).fetchone()[0]

    def delete_pipeline(self, name: str) -> None:
        self.inspect_pipeline(name)
        from .services import stop_service

        stop_service(self, name)
        with self.transaction() as conn:
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
            conn.execute(
                "UPDATE jobs SET state = ?, reason = 'pipeline deleted', finished = ? "
                "WHERE pipeline = ? AND state IN (?, ?)",
                (JOB_KILLED, time.time(), name, JOB_CREATED, JOB_RUNNING),
            )
            conn.execute("DELETE FROM pipelines WHERE name = ?", (name,))
            conn.execute("DELETE FROM datum_results WHERE pipeline = ?", (name,))
            conn.execute("DELETE FROM repos WHERE name IN (?, ?)", (name, name + SPEC_SUFFIX))

    def set_pipeline_state(self, name: str, state: str) -> None:
        self.inspect_pipeline(name)
        with self.transaction() as conn:
            conn.execute("UPDATE pipelines SET state = ? WHERE name = ?", (state, name))

    # -- jobs and datums ------------------------------------------------------------------
    def _job_info(self, row: sqlite3.Row) -> JobInfo:
        return JobInfo(
            pipeline=row["pipeline"],
            id=row["id"],
            state=row["state"],
            reason=row["reason"],
            created=row["created"],
            started=row["started"],
            finished=row["finished"],
            data_processed=row["data_processed"],
            data_skipped=row["data_skipped"],
            data_failed=row["data_failed"],
            data_recovered=row["data_recovered"],
            data_total=row["data_total"],
            spec_version=row["spec_version"],
            output_commit=row["id"],
        )

    def list_jobs(self, pipeline: str | None = None, *, limit: int | None = None) -> list[JobInfo]:
        sql, args = "SELECT * FROM jobs", []
        if pipeline:
            self.inspect_pipeline(pipeline)
            sql += " WHERE pipeline = ?"
            args.append(pipeline)
        sql += " ORDER BY seq DESC" + (f" LIMIT {int(limit)}" if limit else "")
        return [self._job_info(r) for r in self.db.execute(sql, args)]

    def inspect_job(self, pipeline: str, job_id: str) -> JobInfo:
        row = self.db.execute(
            "SELECT * FROM jobs WHERE pipeline = ? AND id = ?", (pipeline, job_id)
        ).fetchone()
        if row is None:
            raise JobNotFound(
                f"no job {pipeline}@{job_id}; `tulip list job -p {pipeline}` shows them"
            )
        return self._job_info(row)

    def list_datums(self, pipeline: str, job_id: str) -> list[DatumInfo]:
        self.inspect_job(pipeline, job_id)
        return [
            DatumInfo(
                pipeline=r["pipeline"],
                job=r["job_id"],
                id=r["hash"],
                state=r["state"],
                files=json.loads(r["files"]),
                tries=r["tries"],
                reason=r["reason"],
                started=r["started"],
                finished=r["finished"],
            )
            for r in self.db.execute(
                "SELECT * FROM datums WHERE pipeline = ? AND job_id = ? ORDER BY hash",
                (pipeline, job_id),
            )
        ]

    def logs(self, pipeline: str, job_id: str | None = None, datum_id: str | None = None) -> str:
        self.inspect_pipeline(pipeline)
        if job_id is None:
            jobs = self.list_jobs(pipeline, limit=1)
            if not jobs:
                return ""
            job_id = jobs[0].id
        job_dir = self.root / "logs" / pipeline / job_id
        if datum_id:
            matches = sorted(job_dir.glob(f"{datum_id}*.log"))
            if not matches:
                raise JobNotFound(f"no log for datum {datum_id} of job {pipeline}@{job_id}")
            return matches[0].read_text(encoding="utf-8", errors="replace")
        if not job_dir.exists():
            return ""
        parts = []
        for p in sorted(job_dir.glob("*.log")):
            parts.append(p.read_text(encoding="utf-8", errors="replace"))
        return "".join(parts)

    # -- maintenance ----------------------------------------------------------------------
    def referenced_blobs(self) -> set[str]:
        refs = {r[0] for r in self.db.execute("SELECT DISTINCT hash FROM files")}
        refs |= {r[0] for r in self.db.execute("SELECT DISTINCT file_hash FROM datum_outputs")}
        return refs

    def fsck(self, *, verify_content: bool = False) -> list[str]:
        """Problems found, as sentences; empty means consistent."""
        problems: list[str] = []
        db = self.db
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        if integrity != "ok":
            problems.append(f"SQLite integrity check: {integrity}")
        for r in db.execute("PRAGMA foreign_key_check"):
            problems.append(f"dangling row in {r[0]} (rowid {r[1]}) pointing into {r[2]}")
        for r in db.execute(
            "SELECT b.repo, b.name, b.head FROM branches b LEFT JOIN commits c "
            "ON c.repo = b.repo AND c.id = b.head WHERE b.head IS NOT NULL AND c.id IS NULL"
        ):
            problems.append(f"branch {r[0]}@{r[1]} points at missing commit {r[2]}")
        for r in db.execute(
            "SELECT c.repo, c.id, c.parent FROM commits c LEFT JOIN commits p "
            "ON p.repo = c.repo AND p.id = c.parent WHERE c.parent IS NOT NULL AND p.id IS NULL"
        ):
            problems.append(f"commit {r[0]}@{r[1]} has missing parent {r[2]}")
        for r in db.execute(
            "SELECT c.repo, c.id FROM commits c LEFT JOIN jobs j ON j.pipeline = c.repo AND j.id = c.id "
            "WHERE c.finished IS NULL AND (j.id IS NULL OR j.state NOT IN ('created', 'running'))"
        ):
            problems.append(f"commit {r[0]}@{r[1]} is open but no job will finish it")
        for r in db.execute(
            "SELECT c.repo, c.id, c.size_bytes, COALESCE(SUM(f.size), 0) FROM commits c "
            "LEFT JOIN files f ON f.repo = c.repo AND f.commit_id = c.id "
            "WHERE c.finished IS NOT NULL GROUP BY c.repo, c.id HAVING c.size_bytes != COALESCE(SUM(f.size), 0)"
        ):
            problems.append(
                f"commit {r[0]}@{r[1]} records {r[2]} bytes but its files sum to {r[3]}"
            )
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
        with self.transaction():
            orphans, strays = self.unreferenced()
            for d in orphans:
                self.objects.remove(d)
            for p in strays:
                if time.time() - p.stat().st_mtime > 60:  # leave writers in flight alone
                    p.unlink(missing_ok=True)
        return len(orphans), len(strays)

    # -- events (the outbox) --------------------------------------------------------------
    def emit_event(self, conn, type_: str, subject: str, data: dict) -> str:
        """Record an event in the caller's transaction, so it lands with the result it reports."""
        eid = new_id()
        conn.execute(
            "INSERT INTO outbox(id, type, subject, time, data, seq) VALUES (?,?,?,?,?,?)",
            (
                eid,
                type_,
                subject,
                time.time(),
                json.dumps(data, sort_keys=True),
                self._next(conn, "event"),
            ),
        )
        return eid

    def __repr__(self) -> str:
        return f"EmbeddedStore({str(self.root)!r})"


def _check_name(name: str, what: str) -> None:
    if not name or any(c not in NAME_CHARS for c in name) or name.endswith(SPEC_SUFFIX):
        raise InvalidPath(
            f"{what} name {name!r} is not allowed: use letters, digits, '_', '-' and '.', "
            f"not ending in {SPEC_SUFFIX!r}"
        )


def python_executable() -> str:
    return sys.executable
