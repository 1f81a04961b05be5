"""The local engine: runs the jobs the store has queued, one datum at a time or in batches.

``tulip`` starts this in the background (``python -m pipelines.runner --root DIR``) whenever
a commit queues jobs, as pachd would. One runner per store at a time: it holds an exclusive
lock on ``runner.lock``. A runner killed mid-job loses nothing: finished datums were recorded
as they finished, so the next runner restarts the job and skips them.

Transforms see Pachyderm's layout. Each datum gets ``<work>/pfs/<input>/<repo path>`` (hard
links to the blobs) and an empty ``<work>/pfs/out``; ``/pfs/`` in the transform's ``cmd``,
``stdin`` and ``env`` is rewritten to that directory, so specs run unchanged on a cluster.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from . import specs as specmod
from .datums import Datum, InputFile, enumerate_datums
from .info import (
    JOB_CREATED,
    JOB_FAILURE,
    JOB_RUNNING,
    JOB_SUCCESS,
    JOB_UNRUNNABLE,
    CommitRef,
    JobInfo,
)
from .layout import SPEC_FILE, SPEC_SUFFIX
from .store import EmbeddedStore
from .worker import DATUM_MANIFEST_ENV, DONE_MARKER, FAILED_MARKER, PFS_ROOT_ENV, STORE_ROOT_ENV

log = logging.getLogger("tulip.runner")

LOCK_NAME = "runner.lock"
DEFAULT_DATUM_TRIES = 3
HOOK_GROUP = "tulip.job_hooks"
SINK_GROUP = "tulip.event_sinks"


# -- starting and locking -----------------------------------------------------------------


@contextmanager
def runner_lock(root: Path, *, blocking: bool = False) -> Iterator[bool]:
    """Hold the store's runner lock; yields False if another process holds it."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK_NAME, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def runner_alive(root: Path) -> bool:
    with runner_lock(root) as got:
        return not got


def spawn_runner(root: Path) -> None:
    """Start a detached runner unless one is already running."""
    if runner_alive(root):
        return
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / "runner.log", "ab") as out:
        subprocess.Popen(
            [sys.executable, "-m", "pipelines.runner", "--root", str(root)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )


# -- what hooks see -------------------------------------------------------------------------


@dataclass
class JobOutcome:
    """A finished job, handed to ``tulip.job_hooks`` inside the transaction that records it."""

    store: EmbeddedStore
    conn: object
    job: JobInfo
    spec: dict
    inputs: list[CommitRef]
    manifest: dict[str, str]  # output path -> blob hash
    emitted: list[str] = field(default_factory=list)

    def read(self, path: str) -> bytes | None:
        digest = self.manifest.get(path)
        return None if digest is None else self.store.objects.read(digest)

    def emit(self, type_: str, subject: str, data: dict) -> str:
        eid = self.store.emit_event(self.conn, type_, subject, data)
        self.emitted.append(eid)
        return eid


def _entry_points(group: str) -> list[Callable]:
    from importlib.metadata import entry_points

    funcs = []
    for ep in sorted(entry_points(group=group), key=lambda e: e.name):
        try:
            funcs.append(ep.load())
        except Exception:  # a broken plugin must not stop the engine
            log.exception("cannot load %s entry point %s", group, ep.name)
    return funcs


# -- the engine -----------------------------------------------------------------------------


@dataclass
class _DatumRun:
    datum: Datum
    hash: str
    dir: Path
    state: str = "pending"
    reason: str | None = None
    tries: int = 0
    started: float | None = None
    finished: float | None = None


class Runner:
    def __init__(self, store: EmbeddedStore, *, progress: Callable[[str], None] | None = None):
        self.store = store
        self.root = store.root
        self.progress = progress or (lambda msg: log.info(msg))

    # Jobs whose inputs are all finished, oldest first.
    def next_job(self) -> JobInfo | None:
        db = self.store.db
        for row in db.execute(
            "SELECT * FROM jobs WHERE state = ? ORDER BY seq", (JOB_CREATED,)
        ).fetchall():
            waiting = db.execute(
                "SELECT 1 FROM commit_provenance p JOIN commits c ON c.repo = p.prov_repo AND c.id = p.prov_id "
                "WHERE p.repo = ? AND p.id = ? AND c.finished IS NULL LIMIT 1",
                (row["pipeline"], row["id"]),
            ).fetchone()
            if not waiting:
                return self.store._job_info(row)
        return None

    def recover(self) -> None:
        """Jobs left running by a dead runner start again (their finished datums are kept)."""
        with self.store.transaction() as conn:
            conn.execute("UPDATE jobs SET state = ? WHERE state = ?", (JOB_CREATED, JOB_RUNNING))

    def run_until_idle(self) -> list[JobInfo]:
        self.recover()
        done = []
        while (job := self.next_job()) is not None:
            self.run_job(job)
            done.append(self.store.inspect_job(job.pipeline, job.id))
        return done

    # -- one job ------------------------------------------------------------------------
    def run_job(self, job: JobInfo) -> None:
        store = self.store
        commit = store.inspect_commit(job.pipeline, job.id)
        spec_ref = next(
            (p for p in commit.direct_provenance if p.repo == job.pipeline + SPEC_SUFFIX), None
        )
        spec = (
            json.loads(store.get_file(spec_ref.repo, spec_ref.id, SPEC_FILE))
            if spec_ref
            else store.inspect_pipeline(job.pipeline).spec
        )
        salt = store.pipeline_salt(job.pipeline) + specmod.transform_hash(spec)
        with store.transaction() as conn:
            conn.execute(
                "UPDATE jobs SET state = ?, started = ? WHERE pipeline = ? AND id = ?",
                (JOB_RUNNING, time.time(), job.pipeline, job.id),
            )
        self.progress(f"{job.pipeline}@{job.id}: starting")

        inputs = [p for p in commit.direct_provenance if p.repo != job.pipeline + SPEC_SUFFIX]
        for ref in inputs:
            upstream = store.inspect_commit(ref.repo, ref.id)
            if upstream.error:
                self._finish(
                    job,
                    spec,
                    inputs,
                    [],
                    state=JOB_UNRUNNABLE,
                    reason=f"upstream commit {ref.repo}@{ref.id} failed: {upstream.error}",
                )
                return

        by_repo = {(r.repo, r.branch): r.id for r in inputs}
        commits: dict[str, tuple[str, str, list[InputFile]]] = {}
        for pin in specmod.pfs_inputs(spec["input"]):
            cid = by_repo.get((pin.repo, pin.branch))
            if cid is None:
                continue
            files = [InputFile(f.path, f.hash, f.size) for f in store.walk_files(pin.repo, cid)]
            commits[pin.name] = (pin.repo, cid, files)
        datums = enumerate_datums(spec["input"], commits)
        runs = {}
        for d in datums:
            h = d.hash(salt)
            runs.setdefault(h, _DatumRun(d, h, Path()))
        total = len(runs)
        known = self._succeeded(job.pipeline, list(runs))
        todo = [r for h, r in runs.items() if h not in known]
        for h, r in runs.items():
            if h in known:
                r.state = "skipped" if known[h] != job.id else "recovered"

        if spec.get("service"):
            from .services import start_service

            try:
                url = start_service(
                    store, job.pipeline, spec, datums[0] if datums else None, job.id
                )
            except Exception as e:  # the service could not start: the job says why
                self._finish(
                    job, spec, inputs, list(runs.values()), state=JOB_FAILURE, reason=str(e)
                )
                return
            for r in runs.values():
                r.state = "success"
            self._finish(
                job,
                spec,
                inputs,
                list(runs.values()),
                state=JOB_SUCCESS,
                reason=f"service running at {url}" if url else None,
            )
            return

        self.progress(
            f"{job.pipeline}@{job.id}: {total} datums, {total - len(todo)} unchanged, "
            f"{len(todo)} to process"
        )
        job_dir = self.root / "work" / job.pipeline / job.id
        log_dir = self.root / "logs" / job.pipeline / job.id
        log_dir.mkdir(parents=True, exist_ok=True)
        try:
            tries = spec.get("datumTries") or DEFAULT_DATUM_TRIES
            if todo:
                if (spec.get("transform") or {}).get("datumBatching"):
                    self._run_batched(job, spec, todo, job_dir, log_dir, tries)
                else:
                    self._run_each(job, spec, todo, job_dir, log_dir, tries)
        except Exception as e:  # an engine error fails this job, not the runner
            log.exception("job %s@%s crashed the engine", job.pipeline, job.id)
            for r in todo:
                if r.state == "pending":
                    r.state, r.reason = "failed", f"engine error: {e}"
        finally:
            shutil.rmtree(job_dir, ignore_errors=True)
        failed = [r for r in runs.values() if r.state == "failed"]
        if failed:
            first = failed[0]
            reason = (
                first.reason
                if total == 1
                else f"{len(failed)} of {total} datums failed; first {', '.join(first.datum.paths)}: "
                f"{first.reason}"
            )
            self._finish(job, spec, inputs, list(runs.values()), state=JOB_FAILURE, reason=reason)
        else:
            self._finish(job, spec, inputs, list(runs.values()), state=JOB_SUCCESS)

    def _succeeded(self, pipeline: str, hashes: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        db = self.store.db
        for i in range(0, len(hashes), 500):
            chunk = hashes[i : i + 500]
            for r in db.execute(
                f"SELECT hash, job_id FROM datum_results WHERE pipeline = ? AND hash IN ({','.join('?' * len(chunk))})",
                (pipeline, *chunk),
            ):
                found[r[0]] = r[1]
        return found

    # -- materializing and running ------------------------------------------------------
    def _materialize(self, run: _DatumRun, base: Path) -> None:
        run.dir = base / run.hash[:24]
        if run.dir.exists():
            shutil.rmtree(run.dir)
        pfs = run.dir / "pfs"
        for part in run.datum.parts:
            mount = pfs / part.input
            mount.mkdir(parents=True, exist_ok=True)
            for f in part.files:
                self.store.objects.materialize(f.hash, mount / f.path.lstrip("/"))
        (pfs / "out").mkdir(parents=True)
        (run.dir / "control").mkdir()

    def _env(self, job: JobInfo, spec: dict, pfs: Path, run: _DatumRun | None) -> dict[str, str]:
        env = dict(os.environ)
        # The venv's tools (tensorboard, python) come first, as they would in the image.
        env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
        for k, v in ((spec.get("transform") or {}).get("env") or {}).items():
            env[k] = _rewrite(str(v), pfs)
        env[PFS_ROOT_ENV] = str(pfs)
        env[STORE_ROOT_ENV] = str(self.root)
        env["PACH_JOB_ID"] = job.id
        env["PACH_OUTPUT_COMMIT_ID"] = job.id
        env["PPS_PIPELINE_NAME"] = job.pipeline
        env.pop(DATUM_MANIFEST_ENV, None)
        if run is not None:
            env["PACH_DATUM_ID"] = run.hash
            for part in run.datum.parts:
                env[f"{part.input}_COMMIT"] = part.commit
        return env

    def _command(self, spec: dict, pfs: Path) -> tuple[list[str], str | None]:
        transform = spec["transform"]
        cmd = [_rewrite(c, pfs) for c in transform["cmd"]]
        if cmd and cmd[0] in ("python", "python3"):
            cmd[0] = sys.executable  # the engine's own interpreter, where Tulip is installed
        stdin = transform.get("stdin")
        text = "\n".join(_rewrite(line, pfs) for line in stdin) + "\n" if stdin else None
        return cmd, text

    def _exec(
        self, spec: dict, cmd: list[str], stdin: str | None, env: dict, cwd: Path, log_path: Path
    ) -> tuple[bool, str]:
        timeout = _seconds(spec.get("datumTimeout"))
        accept = set((spec.get("transform") or {}).get("acceptReturnCode") or [])
        workdir = (spec.get("transform") or {}).get("workingDir")
        if workdir:
            cwd = Path(_rewrite(workdir, Path(env[PFS_ROOT_ENV])))
        with open(log_path, "ab") as out:
            try:
                proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=cwd,
                    start_new_session=True,
                )
            except OSError as e:
                return False, f"cannot run {cmd[0]!r}: {e.strerror}"
            try:
                proc.communicate(stdin.encode() if stdin else None, timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return False, f"timed out after {timeout:g}s (datumTimeout)"
        if proc.returncode == 0 or proc.returncode in accept:
            return True, ""
        return False, _last_line(log_path) or f"exited with code {proc.returncode}"

    def _run_each(
        self, job, spec, todo: list[_DatumRun], job_dir: Path, log_dir: Path, tries: int
    ) -> None:
        parallel = max(
            1,
            min(int((spec.get("parallelismSpec") or {}).get("constant") or 1), os.cpu_count() or 1),
        )

        def one(run: _DatumRun) -> None:
            run.started = time.time()
            while run.tries < tries:
                run.tries += 1
                self._materialize(run, job_dir)
                pfs = run.dir / "pfs"
                cmd, stdin = self._command(spec, pfs)
                ok, reason = self._exec(
                    spec,
                    cmd,
                    stdin,
                    self._env(job, spec, pfs, run),
                    run.dir,
                    log_dir / f"{run.hash}.log",
                )
                if ok:
                    self._record_success(job, run)
                    return
                run.reason = reason
            run.state, run.finished = "failed", time.time()

        if parallel == 1:
            for i, run in enumerate(todo, 1):
                one(run)
                self.progress(f"{job.pipeline}@{job.id}: datum {i}/{len(todo)} {run.state}")
        else:
            with ThreadPoolExecutor(parallel) as pool:
                list(pool.map(one, todo))

    def _run_batched(
        self, job, spec, todo: list[_DatumRun], job_dir: Path, log_dir: Path, tries: int
    ) -> None:
        pending = list(todo)
        attempt = 0
        while pending and attempt < tries:
            attempt += 1
            manifest = job_dir / f"datums-{attempt}.jsonl"
            job_dir.mkdir(parents=True, exist_ok=True)
            with open(manifest, "w", encoding="utf-8") as f:
                for run in pending:
                    run.tries += 1
                    run.started = run.started or time.time()
                    self._materialize(run, job_dir)
                    pfs = run.dir / "pfs"
                    f.write(
                        json.dumps(
                            {
                                "id": run.hash,
                                "inputs": {p.input: str(pfs / p.input) for p in run.datum.parts},
                                "out": str(pfs / "out"),
                                "control": str(run.dir / "control"),
                            }
                        )
                        + "\n"
                    )
            pfs = job_dir / "pfs"
            pfs.mkdir(exist_ok=True)
            cmd, stdin = self._command(spec, pfs)
            env = self._env(job, spec, pfs, None)
            env[DATUM_MANIFEST_ENV] = str(manifest)
            for ref_input, commit in {(p.input, p.commit) for r in pending for p in r.datum.parts}:
                env[f"{ref_input}_COMMIT"] = commit
            ok, reason = self._exec(spec, cmd, stdin, env, job_dir, log_dir / "job.log")
            still = []
            for run in pending:
                control = run.dir / "control"
                if (control / "log.txt").exists():
                    with open(log_dir / f"{run.hash}.log", "a", encoding="utf-8") as out:
                        out.write(
                            (control / "log.txt").read_text(encoding="utf-8", errors="replace")
                        )
                if (control / DONE_MARKER).exists():
                    self._record_success(job, run)
                elif (control / FAILED_MARKER).exists():
                    run.reason = (control / FAILED_MARKER).read_text(encoding="utf-8") or "failed"
                    still.append(run)
                else:
                    run.reason = (
                        reason if not ok else "the process ended before it reached this datum"
                    )
                    still.append(run)
            self.progress(
                f"{job.pipeline}@{job.id}: batch attempt {attempt}: "
                f"{len(pending) - len(still)} datums done, {len(still)} failed"
            )
            pending = still
        for run in pending:
            run.state, run.finished = "failed", time.time()

    def _record_success(self, job: JobInfo, run: _DatumRun) -> None:
        """Adopt a datum's outputs into the store, durably, before moving on."""
        out = run.dir / "pfs" / "out"
        outputs = []
        for p in sorted(out.rglob("*")):
            if p.is_symlink():
                run.state, run.reason = "failed", f"output {p.relative_to(out)} is a symbolic link"
                return
            if p.is_file():
                digest, size = self.store.objects.adopt(p)
                outputs.append(("/" + p.relative_to(out).as_posix(), digest, size))
        run.state, run.finished = "success", time.time()
        with self.store.transaction() as conn:
            conn.execute(
                "DELETE FROM datum_results WHERE pipeline = ? AND hash = ?",
                (job.pipeline, run.hash),
            )
            conn.execute(
                "INSERT INTO datum_results(pipeline, hash, job_id, finished) VALUES (?,?,?,?)",
                (job.pipeline, run.hash, job.id, run.finished),
            )
            conn.executemany(
                "INSERT INTO datum_outputs(pipeline, hash, path, file_hash, size) VALUES (?,?,?,?,?)",
                [(job.pipeline, run.hash, path, digest, size) for path, digest, size in outputs],
            )

    # -- finishing ----------------------------------------------------------------------
    def _finish(
        self,
        job: JobInfo,
        spec: dict,
        inputs: list[CommitRef],
        runs: list[_DatumRun],
        *,
        state: str,
        reason: str | None = None,
    ) -> None:
        store = self.store
        now = time.time()
        counts = {
            "data_processed": sum(r.state == "success" for r in runs),
            "data_skipped": sum(r.state == "skipped" for r in runs),
            "data_recovered": sum(r.state == "recovered" for r in runs),
            "data_failed": sum(r.state == "failed" for r in runs),
            "data_total": len(runs),
        }
        with store.transaction() as conn:
            commit = conn.execute(
                "SELECT parent FROM commits WHERE repo = ? AND id = ?", (job.pipeline, job.id)
            ).fetchone()
            conn.execute(
                "DELETE FROM files WHERE repo = ? AND commit_id = ?", (job.pipeline, job.id)
            )
            manifest: dict[str, str] = {}
            if state == JOB_SUCCESS and not spec.get("service"):
                conflict = self._write_outputs(conn, job, runs, manifest)
                if conflict:
                    state, reason = JOB_FAILURE, conflict
                    manifest.clear()
                    conn.execute(
                        "DELETE FROM files WHERE repo = ? AND commit_id = ?", (job.pipeline, job.id)
                    )
            if state != JOB_SUCCESS and commit["parent"]:
                # The last good output stays at the branch head; the commit records the failure.
                store._copy_manifest(conn, job.pipeline, commit["parent"], job.id)
            store._finish_commit_row(
                conn, job.pipeline, job.id, now, None if state == JOB_SUCCESS else reason
            )
            conn.executemany(
                "INSERT OR REPLACE INTO datums(pipeline, job_id, hash, state, files, tries, reason, started, finished) "
                "VALUES (?,?,?,?,?,?,?,?,?)",
                [
                    (
                        job.pipeline,
                        job.id,
                        r.hash,
                        r.state,
                        json.dumps(r.datum.paths),
                        r.tries,
                        r.reason,
                        r.started,
                        r.finished,
                    )
                    for r in runs
                ],
            )
            conn.execute(
                "UPDATE jobs SET state = ?, reason = ?, finished = ?, data_processed = ?, data_skipped = ?, "
                "data_recovered = ?, data_failed = ?, data_total = ? WHERE pipeline = ? AND id = ?",
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
            final = store._job_info(
                conn.execute(
                    "SELECT * FROM jobs WHERE pipeline = ? AND id = ?", (job.pipeline, job.id)
                ).fetchone()
            )
            outcome = JobOutcome(store, conn, final, spec, inputs, manifest)
            if state in (JOB_FAILURE, JOB_UNRUNNABLE):
                outcome.emit(
                    "job.failed",
                    f"{job.pipeline}@{job.id}",
                    {
                        "pipeline": job.pipeline,
                        "job": job.id,
                        "state": state,
                        "reason": reason,
                        "inputs": [{"repo": r.repo, "commit": r.id} for r in inputs],
                    },
                )
            for hook in _entry_points(HOOK_GROUP):
                hook(outcome)
        self.progress(f"{job.pipeline}@{job.id}: {state}" + (f" ({reason})" if reason else ""))
        if outcome.emitted:
            for sink in _entry_points(SINK_GROUP):
                try:
                    sink(self.root)
                except Exception:
                    log.exception("event sink %s failed", sink)

    def _write_outputs(
        self, conn, job: JobInfo, runs: list[_DatumRun], manifest: dict[str, str]
    ) -> str | None:
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS job_hashes(hash TEXT PRIMARY KEY)")
        conn.execute("DELETE FROM job_hashes")
        conn.executemany(
            "INSERT OR IGNORE INTO job_hashes(hash) VALUES (?)",
            [(r.hash,) for r in runs if r.state in ("success", "skipped", "recovered")],
        )
        owner: dict[str, str] = {}
        rows = conn.execute(
            "SELECT o.path, o.file_hash, o.size, o.hash FROM datum_outputs o JOIN job_hashes j ON j.hash = o.hash "
            "WHERE o.pipeline = ? ORDER BY o.path",
            (job.pipeline,),
        ).fetchall()
        for path, digest, _size, datum_hash in rows:
            if path in manifest and manifest[path] != digest:
                return (
                    f"datums {owner[path][:12]} and {datum_hash[:12]} both wrote {path} with different "
                    "content; make each datum write its own paths"
                )
            manifest[path] = digest
            owner[path] = datum_hash
        conn.executemany(
            "INSERT OR REPLACE INTO files(repo, commit_id, path, hash, size) VALUES (?,?,?,?,?)",
            [(job.pipeline, job.id, path, digest, size) for path, digest, size, _h in rows],
        )
        return None


def _rewrite(text: str, pfs: Path) -> str:
    """Point ``/pfs`` at the local datum directory (only whole ``/pfs`` path prefixes)."""
    return re.sub(r"(?<![\w/.])/pfs(?=/|\b|$)", str(pfs), text)


def _seconds(duration: str | None) -> float | None:
    if not duration:
        return None
    return float(duration.rstrip("s"))


def _last_line(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 8192))
            lines = [ln.strip() for ln in f.read().decode("utf-8", "replace").splitlines()]
    except FileNotFoundError:
        return ""
    lines = [ln for ln in lines if ln]
    return lines[-1] if lines else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run a Tulip store's queued pipeline jobs until idle."
    )
    parser.add_argument("--root", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    root = Path(args.root)
    while True:
        with runner_lock(root) as got:
            if not got:
                return 0
            store = EmbeddedStore(root)
            try:
                Runner(store).run_until_idle()
            except Exception:
                traceback.print_exc()
                return 1
            finally:
                store.close()
        # Lock released: a job queued just now, by a process that saw the lock held, is ours.
        store = EmbeddedStore(root)
        try:
            pending = Runner(store).next_job()
        finally:
            store.close()
        if not pending:
            return 0


if __name__ == "__main__":
    sys.exit(main())
