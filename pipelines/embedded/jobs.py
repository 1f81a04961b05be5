"""Jobs and datums: the only API the local engine (``pipelines.runner``) uses.

The store queues a job (and opens its output commit) in the transaction of the commit that
causes it. The runner then claims it (:meth:`JobQueue.claim`), asks which datum hashes already
succeeded (:meth:`JobQueue.succeeded`), runs the others, records each success as it happens
(:meth:`JobQueue.record_success`, durable, so a killed runner loses no finished datum; a
batched worker's, in bulk when it ends: :meth:`JobQueue.record_successes`), and
finishes the job (:meth:`JobQueue.finish`): the output commit gets the outputs of every datum
(carried over for skipped ones), and the job's events and hooks run in that same transaction.

Tables: ``jobs``, ``datums`` (what each job did with each datum), ``datum_results`` and
``datum_outputs`` (the outputs of the last successful run of each datum hash).

A job's datums are stored as what changed against the job its output builds on (its carry
base, ``jobs.datums_base``): the datums it ran, the ones it skipped that the base did not
hold, and a ``gone`` row for each datum of the base it no longer has. A datum the base held
and this job skipped has no row of its own; read back, it is ``skipped``. So a job that
changes k of N datums writes k rows, not N. When the rows along a chain of bases outgrow the
set itself, the job stores its whole set again, so reading a set reads at most twice its size
and the rewrite costs O(k) per job, amortized.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .. import specs as specmod
from ..backend import Backend
from ..datums import Datum, InputFile
from ..errors import JobNotFound
from ..info import (
    JOB_CREATED,
    JOB_FAILURE,
    JOB_KILLED,
    JOB_RUNNING,
    JOB_SUCCESS,
    JOB_UNRUNNABLE,
    CommitRef,
    DatumInfo,
    JobInfo,
)
from ..layout import SPEC_FILE, SPEC_SUFFIX
from ..objects import ObjectStore
from . import commits, manifests
from .db import Connection, Database, Migration, Row
from .outbox import Outbox
from .services import Services

log = logging.getLogger("tulip.jobs")

MIGRATIONS = [
    Migration(
        "jobs and datums",
        """
        CREATE TABLE jobs (
            pipeline       TEXT NOT NULL,
            id             TEXT NOT NULL,
            state          TEXT NOT NULL,
            reason         TEXT,
            created        REAL NOT NULL,
            started        REAL,
            finished       REAL,
            data_processed INTEGER NOT NULL DEFAULT 0,
            data_skipped   INTEGER NOT NULL DEFAULT 0,
            data_failed    INTEGER NOT NULL DEFAULT 0,
            data_recovered INTEGER NOT NULL DEFAULT 0,
            data_total     INTEGER NOT NULL DEFAULT 0,
            spec_version   INTEGER NOT NULL,
            seq            INTEGER NOT NULL,
            PRIMARY KEY (pipeline, id)
        );
        CREATE INDEX jobs_by_state ON jobs(state, seq);
        CREATE TABLE datums (
            pipeline TEXT NOT NULL,
            job_id   TEXT NOT NULL,
            hash     TEXT NOT NULL,
            state    TEXT NOT NULL,
            files    TEXT NOT NULL,
            tries    INTEGER NOT NULL DEFAULT 0,
            reason   TEXT,
            started  REAL,
            finished REAL,
            PRIMARY KEY (pipeline, job_id, hash),
            FOREIGN KEY (pipeline, job_id) REFERENCES jobs(pipeline, id) ON DELETE CASCADE
        );
        -- The outputs of the last successful run of each datum hash: what a skipped datum
        -- carries over.
        CREATE TABLE datum_results (
            pipeline TEXT NOT NULL,
            hash     TEXT NOT NULL,
            job_id   TEXT NOT NULL,
            finished REAL NOT NULL,
            PRIMARY KEY (pipeline, hash)
        );
        CREATE TABLE datum_outputs (
            pipeline  TEXT NOT NULL,
            hash      TEXT NOT NULL,
            path      TEXT NOT NULL,
            file_hash TEXT NOT NULL,
            size      INTEGER NOT NULL,
            PRIMARY KEY (pipeline, hash, path),
            FOREIGN KEY (pipeline, hash) REFERENCES datum_results(pipeline, hash) ON DELETE CASCADE
        ) WITHOUT ROWID;
        CREATE INDEX datum_outputs_by_hash ON datum_outputs(file_hash)
        """,
    ),
    Migration(
        "datum outputs by path (carry-over touches only the paths of changed datums)",
        "CREATE INDEX datum_outputs_by_path ON datum_outputs(pipeline, path)",
    ),
    Migration(
        "a job's datums stored as changes against its carry base (existing jobs: whole sets)",
        # datums_base NULL: the job's datums rows are its whole set; datums_chain: the rows
        # stored along its chain of bases. (No SQL comments here: SQLite would copy them into
        # the table's schema text, where they end the line.)
        """
        ALTER TABLE jobs ADD COLUMN datums_base TEXT;
        ALTER TABLE jobs ADD COLUMN datums_chain INTEGER NOT NULL DEFAULT 0
        """,
    ),
    Migration(
        "datum results read by one index scan (which hashes succeeded, and in which job)",
        "CREATE INDEX datum_results_jobs ON datum_results(pipeline, hash, job_id)",
    ),
]

# What a datum came to in one job.
SUCCESS = "success"
SKIPPED = "skipped"
RECOVERED = "recovered"  # finished by an earlier runner of the same job
FAILED = "failed"
CARRIED = (SUCCESS, SKIPPED, RECOVERED)
GONE = "gone"  # stored only: a datum of the base that this job no longer has


# -- what the store does with jobs ----------------------------------------------------------


def queue(db: Database, conn: Connection, pipeline: str, job_id: str, spec_version: int) -> None:
    """A new job for an output commit opened in the same transaction."""
    conn.execute(
        "INSERT INTO jobs(pipeline, id, state, created, spec_version, seq) VALUES (?,?,?,?,?,?)",
        (pipeline, job_id, JOB_CREATED, time.time(), spec_version, db.next_value(conn, "job")),
    )


def pending(db: Database) -> bool:
    """Is any job waiting or running?"""
    return (
        db.execute(
            "SELECT 1 FROM jobs WHERE state IN (?, ?) LIMIT 1", (JOB_CREATED, JOB_RUNNING)
        ).fetchone()
        is not None
    )


def kill_pipeline_jobs(conn: Connection, pipeline: str, reason: str) -> None:
    conn.execute(
        "UPDATE jobs SET state = ?, reason = ?, finished = ? WHERE pipeline = ? AND state IN (?, ?)",
        (JOB_KILLED, reason, time.time(), pipeline, JOB_CREATED, JOB_RUNNING),
    )


def forget_pipeline(conn: Connection, pipeline: str) -> None:
    """A deleted pipeline's datum results go; its jobs stay in the record, killed."""
    conn.execute("DELETE FROM datum_results WHERE pipeline = ?", (pipeline,))


def running_in_set(conn: Connection, set_id: str) -> list[str]:
    """Pipelines whose job of this commit set is running now."""
    return [
        r[0]
        for r in conn.execute(
            "SELECT pipeline FROM jobs WHERE id = ? AND state = ?", (set_id, JOB_RUNNING)
        )
    ]


def delete_set(conn: Connection, set_id: str) -> None:
    conn.execute("DELETE FROM jobs WHERE id = ?", (set_id,))


def live(conn: Connection) -> set[tuple[str, str]]:
    """(pipeline, job id) of every job that will still finish its output commit."""
    return {
        (r[0], r[1])
        for r in conn.execute(
            "SELECT pipeline, id FROM jobs WHERE state IN (?, ?)", (JOB_CREATED, JOB_RUNNING)
        )
    }


def referenced(conn: Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT DISTINCT file_hash FROM datum_outputs")}


def job_info(r: Row) -> JobInfo:
    return JobInfo(
        pipeline=r["pipeline"],
        id=r["id"],
        state=r["state"],
        reason=r["reason"],
        created=r["created"],
        started=r["started"],
        finished=r["finished"],
        data_processed=r["data_processed"],
        data_skipped=r["data_skipped"],
        data_failed=r["data_failed"],
        data_recovered=r["data_recovered"],
        data_total=r["data_total"],
        spec_version=r["spec_version"],
        output_commit=r["id"],
    )


def list_jobs(db: Database, pipeline: str | None, limit: int | None) -> list[JobInfo]:
    sql, args = "SELECT * FROM jobs", []
    if pipeline:
        sql += " WHERE pipeline = ?"
        args.append(pipeline)
    sql += " ORDER BY seq DESC" + (f" LIMIT {int(limit)}" if limit else "")
    return [job_info(r) for r in db.execute(sql, args)]


def inspect_job(conn: Connection, pipeline: str, job_id: str) -> JobInfo:
    r = conn.execute(
        "SELECT * FROM jobs WHERE pipeline = ? AND id = ?", (pipeline, job_id)
    ).fetchone()
    if r is None:
        raise JobNotFound(f"no job {pipeline}@{job_id}; `tulip list job -p {pipeline}` shows them")
    return job_info(r)


def list_datums(db: Database, pipeline: str, job_id: str) -> list[DatumInfo]:
    inspect_job(db.conn, pipeline, job_id)
    rows = datum_set(db.conn, pipeline, job_id)
    return [
        DatumInfo(
            pipeline=pipeline,
            job=job_id,
            id=h,
            state=r["state"] if own else SKIPPED,
            files=json.loads(r["files"]),
            tries=r["tries"] if own else 0,
            reason=r["reason"] if own else None,
            started=r["started"] if own else None,
            finished=r["finished"] if own else None,
        )
        for h, (r, own) in sorted(rows.items())
    ]


def datum_set(conn: Connection, pipeline: str, job_id: str) -> dict[str, tuple[Row, bool]]:
    """A job's datums: hash -> (its row, whether the job itself wrote it).

    The nearest row per hash along the chain of bases wins, and a ``gone`` row drops the
    hash. A row inherited from a base is a datum this job skipped."""
    found: dict[str, tuple[Row, bool]] = {}
    for r in _chain_rows(conn, pipeline, job_id, "d.*"):
        if r["state"] == GONE:
            found.pop(r["hash"], None)
        else:
            found[r["hash"]] = (r, r["level"] == 0)
    return found


def datum_hashes(conn: Connection, pipeline: str, job_id: str) -> set[str]:
    """The hashes of a job's datums (:func:`datum_set` without the rows)."""
    found: set[str] = set()
    for h, state, _level in _chain_rows(conn, pipeline, job_id, "d.hash, d.state"):
        if state == GONE:
            found.discard(h)
        else:
            found.add(h)
    return found


def _chain_rows(conn: Connection, pipeline: str, job_id: str, columns: str) -> list[Row]:
    """The datums rows of a job and of its chain of bases, the farthest base's first: one
    query, however long the chain."""
    cur = conn.cursor()
    if columns != "d.*":
        cur.row_factory = None  # plain tuples when the caller unpacks them
    return cur.execute(
        "WITH RECURSIVE chain(id, base, level) AS ("
        " SELECT id, datums_base, 0 FROM jobs WHERE pipeline = ? AND id = ?"
        " UNION ALL SELECT j.id, j.datums_base, c.level + 1 FROM chain c"
        " JOIN jobs j ON j.pipeline = ? AND j.id = c.base) "
        f"SELECT {columns}, c.level FROM chain c JOIN datums d "
        "ON d.pipeline = ? AND d.job_id = c.id ORDER BY c.level DESC",
        (pipeline, job_id, pipeline, pipeline),
    ).fetchall()


# -- what the runner sees ---------------------------------------------------------------------


class _Store(Protocol):
    """What the queue needs of the store that holds it."""

    root: Path
    db: Database
    objects: ObjectStore
    outbox: Outbox
    services: Services

    def inspect_commit(self, repo: str, commit_id: str): ...
    def get_file(self, repo: str, commit_id: str, path: str) -> bytes: ...
    def inspect_pipeline(self, name: str): ...
    def pipeline_salt(self, name: str) -> str: ...


@dataclass(frozen=True)
class ClaimedJob:
    """A job the runner has claimed, with what it needs to run it."""

    job: JobInfo
    spec: dict
    salt: str  # the pipeline's salt plus its transform's hash: part of every datum hash
    inputs: list[CommitRef]
    blocked: str | None  # why it cannot run (an upstream commit failed), if it cannot

    @property
    def is_service(self) -> bool:
        return bool(self.spec.get("service"))


class DatumRecord(Protocol):
    """What one job did with one datum, as :meth:`JobQueue.finish` reads it (the runner's own
    bookkeeping object qualifies, so a job of a million datums copies none of them)."""

    hash: str
    state: str  # success, skipped, recovered or failed
    tries: int
    reason: str | None
    started: float | None
    finished: float | None

    @property
    def paths(self) -> list[str]: ...


@dataclass
class DatumOutcome:
    """What one job did with one datum: a :class:`DatumRecord` of plain fields."""

    hash: str
    paths: list[str]
    state: str  # success, skipped, recovered or failed
    tries: int = 0
    reason: str | None = None
    started: float | None = None
    finished: float | None = None


@dataclass
class JobFinished:
    """A finished job, handed to each ``tulip.job_hooks`` hook.

    Hooks run inside the transaction that records the job, so the events they ``emit`` land
    with it, or not at all. ``store`` reads the store as it is in that transaction (read only).
    A hook that raises is logged and undone (its events too); the job commits regardless.
    """

    store: Backend
    job: JobInfo
    spec: dict
    inputs: list[CommitRef]
    _read: Callable[[str], bytes | None] = field(repr=False)
    _emit: Callable[[str, str, dict], str] = field(repr=False)
    emitted: list[str] = field(default_factory=list)

    def read(self, path: str) -> bytes | None:
        """A file of the job's output commit, or None when there is none."""
        return self._read(path)

    def emit(self, type_: str, subject: str, data: dict) -> str:
        eid = self._emit(type_, subject, data)
        self.emitted.append(eid)
        return eid


Hook = Callable[[JobFinished], None]


#: where finished jobs' scratch trees wait to be deleted (no pipeline name starts with a dot)
TRASH_DIR = ".trash"


class JobQueue:
    def __init__(self, store: _Store):
        self.store = store
        self.db = store.db
        self.root = store.root

    # -- claiming ---------------------------------------------------------------------------
    def recover(self) -> None:
        """Jobs left running by a dead runner start again (their finished datums are kept);
        scratch trees a dead runner left to delete are deleted."""
        with self.db.transaction() as conn:
            conn.execute("UPDATE jobs SET state = ? WHERE state = ?", (JOB_CREATED, JOB_RUNNING))
        trash = self.root / "work" / TRASH_DIR
        if trash.is_dir():
            for left in trash.iterdir():
                self._delete_later(left)

    def next_job(self) -> JobInfo | None:
        """The oldest waiting job whose inputs have all finished."""
        conn = self.db.conn
        for r in conn.execute(
            "SELECT * FROM jobs WHERE state = ? ORDER BY seq", (JOB_CREATED,)
        ).fetchall():
            if not commits.waiting_on(conn, r["pipeline"], r["id"]):
                return job_info(r)
        return None

    def claim(self, job: JobInfo) -> ClaimedJob:
        """Mark a job running; its spec is the one its spec commit recorded."""
        store = self.store
        commit = store.inspect_commit(job.pipeline, job.id)
        spec_repo = job.pipeline + SPEC_SUFFIX
        spec_ref = next((p for p in commit.direct_provenance if p.repo == spec_repo), None)
        spec = (
            json.loads(store.get_file(spec_ref.repo, spec_ref.id, SPEC_FILE))
            if spec_ref
            else store.inspect_pipeline(job.pipeline).spec
        )
        salt = store.pipeline_salt(job.pipeline) + specmod.transform_hash(spec)
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE jobs SET state = ?, started = ? WHERE pipeline = ? AND id = ?",
                (JOB_RUNNING, time.time(), job.pipeline, job.id),
            )
        inputs = [p for p in commit.direct_provenance if p.repo != spec_repo]
        blocked = None
        for ref in inputs:
            upstream = store.inspect_commit(ref.repo, ref.id)
            if upstream.error:
                blocked = f"upstream commit {ref.repo}@{ref.id} failed: {upstream.error}"
                break
        return ClaimedJob(self.inspect(job.pipeline, job.id), spec, salt, inputs, blocked)

    def inspect(self, pipeline: str, job_id: str) -> JobInfo:
        return inspect_job(self.db.conn, pipeline, job_id)

    def input_files(self, repo: str, commit_id: str) -> list[InputFile]:
        return list(map(InputFile._make, manifests.walk(self.db.conn, repo, commit_id)))

    def succeeded(self, pipeline: str, hashes: Iterable[str]) -> dict[str, str]:
        """Of these datum hashes, those that succeeded before, with the job that ran them.

        One scan of the pipeline's results and a set lookup per hash: no query per datum."""
        wanted = hashes if isinstance(hashes, (set, dict)) else set(hashes)
        cur = self.db.conn.cursor()
        cur.row_factory = None  # plain tuples: one scan of up to millions of rows
        cur.execute("SELECT hash, job_id FROM datum_results WHERE pipeline = ?", (pipeline,))
        return {h: job_id for h, job_id in cur if h in wanted}

    # -- running ----------------------------------------------------------------------------
    def work_dir(self, job: JobInfo) -> Path:
        return self.root / "work" / job.pipeline / job.id

    def discard_work(self, job: JobInfo) -> None:
        """Remove a finished job's scratch tree without making the job wait for it.

        A batched job leaves several directories per datum (thousands of rmdir calls, seconds
        on an overlay filesystem); the tree is renamed aside at once, so a rerun starts clean,
        and a background thread deletes it. A runner that dies first leaves it in
        ``work/.trash``, which :meth:`recover` sweeps."""
        work = self.work_dir(job)
        if not work.exists():
            return
        trash = self.root / "work" / TRASH_DIR
        trash.mkdir(parents=True, exist_ok=True)
        aside = trash / f"{job.pipeline}-{job.id}-{uuid.uuid4().hex[:8]}"
        try:
            work.rename(aside)
        except OSError:  # another filesystem, or a file held open: delete it in place
            shutil.rmtree(work, ignore_errors=True)
            return
        self._delete_later(aside)

    @staticmethod
    def _delete_later(path: Path) -> None:
        threading.Thread(
            target=shutil.rmtree, args=(path,), kwargs={"ignore_errors": True}, daemon=True
        ).start()

    def log_dir(self, job: JobInfo) -> Path:
        return self.root / "logs" / job.pipeline / job.id

    def materialize(self, digest: str, dest: Path) -> None:
        """Place an input blob where a transform reads it (a hard link when possible)."""
        self.store.objects.materialize(digest, dest)

    def start_service(self, claimed: ClaimedJob, datum: Datum | None) -> str:
        return self.store.services.start(claimed.job.pipeline, claimed.spec, datum, claimed.job.id)

    def record_success(self, job: JobInfo, datum_hash: str, out: Path) -> str | None:
        """Adopt a datum's outputs into the store, durably, before the runner moves on.

        Returns why the outputs cannot be taken (a symbolic link), else None."""
        return self.record_successes(job, [(datum_hash, out)]).get(datum_hash)

    def record_successes(self, job: JobInfo, done: Sequence[tuple[str, Path]]) -> dict[str, str]:
        """:meth:`record_success` for many datums in one transaction (a batch's worth, as a
        batched worker reports them together). Returns why, for the datums whose outputs
        cannot be taken."""
        objects = self.store.objects
        problems: dict[str, str] = {}
        taken: list[tuple[str, list[tuple[str, str, int]]]] = []
        for datum_hash, out in done:
            outputs = []
            for p in sorted(out.rglob("*")):
                if p.is_symlink():
                    problems[datum_hash] = f"output {p.relative_to(out)} is a symbolic link"
                    break
                if p.is_file():
                    digest, size = objects.adopt(p)
                    outputs.append(("/" + p.relative_to(out).as_posix(), digest, size))
            else:
                taken.append((datum_hash, outputs))
        if not taken:
            return problems
        now = time.time()
        with self.db.transaction() as conn:
            conn.executemany(
                "DELETE FROM datum_results WHERE pipeline = ? AND hash = ?",
                [(job.pipeline, h) for h, _o in taken],
            )
            conn.executemany(
                "INSERT INTO datum_results(pipeline, hash, job_id, finished) VALUES (?,?,?,?)",
                [(job.pipeline, h, job.id, now) for h, _o in taken],
            )
            conn.executemany(
                "INSERT INTO datum_outputs(pipeline, hash, path, file_hash, size) VALUES (?,?,?,?,?)",
                [
                    (job.pipeline, h, path, digest, size)
                    for h, outputs in taken
                    for path, digest, size in outputs
                ],
            )
        return problems

    # -- finishing --------------------------------------------------------------------------
    def finish(
        self,
        claimed: ClaimedJob,
        datums: Sequence[DatumRecord],
        *,
        state: str,
        reason: str | None = None,
        hooks: Sequence[Hook] = (),
    ) -> tuple[JobInfo, list[str]]:
        """Record a job's end, its output commit and its events, in one transaction.

        A successful job's output is the union of its datums' outputs; two datums writing one
        path with different content fail it. A failed job's commit keeps the last good
        output and records why. Returns the final job and the IDs of the events emitted."""
        job = claimed.job
        now = time.time()
        counts = {
            "data_processed": sum(d.state == SUCCESS for d in datums),
            "data_skipped": sum(d.state == SKIPPED for d in datums),
            "data_recovered": sum(d.state == RECOVERED for d in datums),
            "data_failed": sum(d.state == FAILED for d in datums),
            "data_total": len(datums),
        }
        with self.db.transaction() as conn:
            commit = commits.require(conn, job.pipeline, job.id)
            base = self._carry_base(conn, job.pipeline, commit)
            delta = _delta(conn, job.pipeline, base or None, datums)
            size, written = 0, False
            if state == JOB_SUCCESS and not claimed.is_service:
                conflict, size = self._write_outputs(conn, job, commit, datums, base, delta)
                if conflict:
                    state, reason, size = JOB_FAILURE, conflict, 0
                written = conflict is None
            if state != JOB_SUCCESS and commit["parent"]:
                # The last good output stays at the branch head; the commit records the failure.
                manifests.copy(conn, job.pipeline, commit["parent"], job.id)
                size = commits.require(conn, job.pipeline, commit["parent"])["size_bytes"] or 0
            elif not written:
                manifests.clear(conn, job.pipeline, job.id)
            commits.close(
                conn, job.pipeline, job.id, now, size, None if state == JOB_SUCCESS else reason
            )
            _store_datums(conn, job, delta)
            conn.execute(
                "UPDATE jobs SET state = ?, reason = ?, finished = ?, data_processed = ?, "
                "data_skipped = ?, data_recovered = ?, data_failed = ?, data_total = ? "
                "WHERE pipeline = ? AND id = ?",
                (
                    state,
                    reason,
                    now,
                    counts["data_processed"],
                    counts["data_skipped"],
                    counts["data_recovered"],
                    counts["data_failed"],
                    counts["data_total"],
                    job.pipeline,
                    job.id,
                ),
            )
            final = inspect_job(conn, job.pipeline, job.id)
            event = self._event(conn, final, claimed)
            if state in (JOB_FAILURE, JOB_UNRUNNABLE):
                event.emit(
                    "job.failed",
                    f"{job.pipeline}@{job.id}",
                    {
                        "pipeline": job.pipeline,
                        "job": job.id,
                        "state": state,
                        "reason": reason,
                        "inputs": [{"repo": r.repo, "commit": r.id} for r in claimed.inputs],
                    },
                )
            self._run_hooks(event, hooks)
        return final, event.emitted

    def _event(self, conn: Connection, job: JobInfo, claimed: ClaimedJob) -> JobFinished:
        objects, outbox = self.store.objects, self.store.outbox

        def read(path: str) -> bytes | None:
            found = manifests.lookup(conn, job.pipeline, job.id, path)
            return None if found is None else objects.read(found[0])

        return JobFinished(
            store=self.store,  # type: ignore[arg-type]
            job=job,
            spec=claimed.spec,
            inputs=list(claimed.inputs),
            _read=read,
            _emit=lambda t, s, d: outbox.emit(conn, t, s, d),
        )

    def _run_hooks(self, event: JobFinished, hooks: Sequence[Hook]) -> None:
        for i, hook in enumerate(hooks):
            before = len(event.emitted)
            try:
                with self.db.savepoint(f"hook_{i}"):
                    hook(event)
            except Exception:  # a broken hook must not lose the job's result
                del event.emitted[before:]
                log.exception(
                    "job hook %s failed on %s@%s; its events were dropped, the job is recorded",
                    getattr(hook, "__qualname__", hook),
                    event.job.pipeline,
                    event.job.id,
                )

    def _write_outputs(
        self,
        conn: Connection,
        job: JobInfo,
        commit: Row,
        datums: Sequence[DatumRecord],
        base: str | bool | None,
        delta: _Delta,
    ) -> tuple[str | None, int]:
        """Write the output commit: (why it cannot be written, or None; its size in bytes).

        When the parent output commit is the output of a known job (the carry base), the new
        commit is that parent plus what the changed datums (new, gone, or run again) change:
        k changed datums touch k datums' paths, not N. Otherwise every output is written."""
        held = {d.hash for d in datums if d.state in CARRIED}
        if base is False:
            _fill(conn, "job_hashes", held)
            return self._write_all(conn, job)
        _fill(conn, "changed_hashes", delta.changed)
        if conn.execute(
            "SELECT 1 FROM changed_hashes c WHERE NOT EXISTS (SELECT 1 FROM datum_results r "
            "WHERE r.pipeline = ? AND r.hash = c.hash) LIMIT 1",
            (job.pipeline,),
        ).fetchone():
            _fill(conn, "job_hashes", held)
            return self._write_all(conn, job)  # a gone datum's outputs are unknown: rebuild
        touched = [
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT o.path FROM changed_hashes c JOIN datum_outputs o "
                "ON o.pipeline = ? AND o.hash = c.hash",
                (job.pipeline,),
            )
        ]
        _fill(conn, "touched_paths", touched)
        rows = [
            r
            for r in conn.execute(
                "SELECT o.path, o.file_hash, o.size, o.hash FROM touched_paths t "
                "JOIN datum_outputs o ON o.pipeline = ? AND o.path = t.hash ORDER BY o.path",
                (job.pipeline,),
            )
            if r[3] in held
        ]
        conflict, new = _union(rows)
        if conflict:
            return conflict, 0
        size = 0
        if base is not None:  # starts as its parent: with shared manifests, no rows at all
            manifests.copy(conn, job.pipeline, commit["parent"], job.id)
            size = commits.require(conn, job.pipeline, commit["parent"])["size_bytes"] or 0
        else:
            manifests.clear(conn, job.pipeline, job.id)
        gone = []
        for path in touched:
            old = manifests.lookup(conn, job.pipeline, job.id, path)
            if old is not None:
                size -= old[1]
                if path not in new:
                    gone.append(("delete", path))
        if gone:
            manifests.apply(conn, job.pipeline, job.id, gone, branch="master")
        if new:
            manifests.write(conn, job.pipeline, job.id, new.values())
        return None, size + sum(s for _p, _d, s in new.values())

    def _write_all(self, conn: Connection, job: JobInfo) -> tuple[str | None, int]:
        """Every output of the job's datums (``job_hashes``), written afresh."""
        rows = conn.execute(
            "SELECT o.path, o.file_hash, o.size, o.hash FROM datum_outputs o "
            "JOIN job_hashes j ON j.hash = o.hash WHERE o.pipeline = ? ORDER BY o.path",
            (job.pipeline,),
        ).fetchall()
        conflict, new = _union(rows)
        if conflict:
            return conflict, 0
        manifests.clear(conn, job.pipeline, job.id)
        manifests.write(conn, job.pipeline, job.id, new.values())
        return None, sum(s for _p, _d, s in new.values())

    @staticmethod
    def _carry_base(conn: Connection, pipeline: str, commit: Row) -> str | bool | None:
        """Whose datums the parent output commit holds the outputs of.

        A job id; None when no job has succeeded yet along the parents (the parent holds
        nothing); False when it cannot be known (then everything is written afresh). A failed
        job's commit is a copy of its parent, so the walk goes on past it."""
        cid = commit["parent"]
        while cid:
            c = commits.row(conn, pipeline, cid)
            j = conn.execute(
                "SELECT state FROM jobs WHERE pipeline = ? AND id = ?", (pipeline, cid)
            ).fetchone()
            if c is None or c["finished"] is None or j is None:
                return False
            if j["state"] == JOB_SUCCESS:
                return cid
            if j["state"] not in (JOB_FAILURE, JOB_UNRUNNABLE):
                return False
            cid = c["parent"]
        return None


@dataclass
class _Delta:
    """How a job's datums are stored, and which of them changed against its carry base."""

    base: str | None  # the job the rows are changes against; None: the rows are the whole set
    rows: list[DatumRecord]
    chain: int  # rows stored along the chain of bases, this job's included
    changed: set[str]  # datums whose outputs may differ from the base's: new, run, gone


def _delta(
    conn: Connection, pipeline: str, base: str | None, datums: Sequence[DatumRecord]
) -> _Delta:
    """A job's datums against its carry base: O(N) set work in memory, O(k) rows to store."""
    if base is None:
        return _Delta(None, list(datums), 0, {d.hash for d in datums if d.state in CARRIED})
    held = datum_hashes(conn, pipeline, base)
    rows = [d for d in datums if not (d.state == SKIPPED and d.hash in held)]
    changed = {d.hash for d in rows if d.state in CARRIED}
    gone = held - {d.hash for d in datums}
    rows += [DatumOutcome(h, [], GONE) for h in gone]
    changed |= gone
    above = conn.execute(
        "SELECT datums_chain FROM jobs WHERE pipeline = ? AND id = ?", (pipeline, base)
    ).fetchone()[0]
    if above + len(rows) > len(datums):  # the changes outgrew the set: store it whole again
        return _Delta(None, list(datums), 0, changed)
    return _Delta(base, rows, above + len(rows), changed)


def _store_datums(conn: Connection, job: JobInfo, delta: _Delta) -> None:
    conn.execute("DELETE FROM datums WHERE pipeline = ? AND job_id = ?", (job.pipeline, job.id))
    conn.executemany(
        "INSERT INTO datums(pipeline, job_id, hash, state, files, tries, reason, started, "
        "finished) VALUES (?,?,?,?,?,?,?,?,?)",
        [
            (
                job.pipeline,
                job.id,
                d.hash,
                d.state,
                json.dumps(d.paths),
                d.tries,
                d.reason,
                d.started,
                d.finished,
            )
            for d in sorted(delta.rows, key=lambda d: d.hash)
        ],
    )
    conn.execute(
        "UPDATE jobs SET datums_base = ?, datums_chain = ? WHERE pipeline = ? AND id = ?",
        (delta.base, delta.chain, job.pipeline, job.id),
    )


def _fill(conn: Connection, table: str, values: Iterable[str]) -> None:
    """A temporary one-column set, emptied first: the operand of a set operation in SQL."""
    conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table}(hash TEXT PRIMARY KEY)")
    conn.execute(f"DELETE FROM {table}")
    conn.executemany(f"INSERT OR IGNORE INTO {table}(hash) VALUES (?)", ((v,) for v in values))


def _union(rows: Sequence[Row]) -> tuple[str | None, dict[str, tuple[str, str, int]]]:
    """Datum outputs (path, digest, size, datum hash) as one manifest, or why they clash."""
    manifest: dict[str, tuple[str, str, int]] = {}
    owner: dict[str, str] = {}
    for path, digest, size, datum_hash in rows:
        if path in manifest and manifest[path][1] != digest:
            return (
                f"datums {owner[path][:12]} and {datum_hash[:12]} both wrote {path} with "
                "different content; make each datum write its own paths"
            ), {}
        manifest[path] = (path, digest, size)
        owner[path] = datum_hash
    return None, manifest
