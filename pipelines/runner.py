"""The local engine: runs the jobs the store has queued, one datum at a time or in batches.

``tulip`` starts this in the background (``python -m pipelines.runner --root DIR``) whenever
a commit queues jobs, as pachd would. One runner per store at a time: it holds an exclusive
lock on ``runner.lock``. A runner killed mid-job loses nothing: finished datums were recorded
as they finished, so the next runner restarts the job and skips them.

Transforms see Pachyderm's layout. Each datum gets ``<work>/pfs/<input>/<repo path>`` (hard
links to the blobs) and an empty ``<work>/pfs/out``; ``/pfs/`` in the transform's ``cmd``,
``stdin`` and ``env`` is rewritten to that directory, so specs run unchanged on a cluster.

The runner reaches the store only through :class:`pipelines.embedded.jobs.JobQueue`.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from . import specs as specmod
from .datums import Datum, enumerate_datums
from .embedded.jobs import (
    FAILED,
    RECOVERED,
    SKIPPED,
    SUCCESS,
    ClaimedJob,
    Hook,
    JobQueue,
)
from .embedded.launch import runner_lock
from .info import JOB_FAILURE, JOB_SUCCESS, JOB_UNRUNNABLE, JobInfo
from .layout import GATE_BLOCKED
from .transform import base_env, command, last_line, rewrite_pfs, seconds
from .worker import DATUM_MANIFEST_ENV, DONE_MARKER, FAILED_MARKER, PFS_ROOT_ENV, STORE_ROOT_ENV

log = logging.getLogger("tulip.runner")

DEFAULT_DATUM_TRIES = 3
HOOK_GROUP = "tulip.job_hooks"
SINK_GROUP = "tulip.event_sinks"
PARALLELISM_ENV = "TULIP_PARALLELISM"  # the background runner's --parallelism
WORKER_ENV = "TULIP_WORKER"  # "<index>/<count>" of a batched worker, when there are several
# Each of n workers gets cores/n threads from the libraries that would each take every core.
THREAD_ENV = ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS")
RECORD_CHUNK = 1024  # finished datums recorded per transaction once a batched worker ends


class EngineHost(Protocol):
    """Whatever holds the queue: the embedded store."""

    @property
    def jobs(self) -> JobQueue: ...


def entry_points(group: str) -> list[Callable]:
    """The installed plugins of a group, by name; one that cannot load is logged and skipped."""
    from importlib.metadata import entry_points as installed

    funcs = []
    for ep in sorted(installed(group=group), key=lambda e: e.name):
        try:
            funcs.append(ep.load())
        except Exception:  # a broken plugin must not stop the engine
            log.exception("cannot load %s entry point %s", group, ep.name)
    return funcs


def no_datums_reason(node: dict, inputs: dict[str, tuple[str, str, list]]) -> str:
    """Why an input tree gave no datums, naming the inputs: shown by list job / inspect job."""

    def is_empty(leaf: specmod.PfsInput) -> bool:
        return leaf.name not in inputs or not inputs[leaf.name][2]

    starving = specmod.starving_inputs(node, is_empty)
    if starving:
        named = ", ".join(
            f"{leaf.repo}@{leaf.branch}"
            + (f" ({inputs[leaf.name][0]}@{inputs[leaf.name][1]})" if leaf.name in inputs else "")
            + (" is empty" if leaf.name in inputs else " has no commit")
            for leaf in starving
        )
        return f"0 datums: input {named}; a cross with an empty input has no datums"
    globs = ", ".join(f"{leaf.name} glob {leaf.glob}" for leaf in specmod.pfs_inputs(node))
    return f"0 datums: no path matched ({globs})"


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Scheduling builds a few objects per datum and no cycles among them; left on, the cyclic
    collector rescans the growing heap again and again (half the time at 100k datums)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@dataclass
class _DatumRun:
    datum: Datum
    hash: str
    dir: Path = Path()
    state: str = "pending"
    reason: str | None = None
    tries: int = 0
    started: float | None = None
    finished: float | None = None

    @property
    def paths(self) -> list[str]:
        return self.datum.paths


class Runner:
    def __init__(
        self,
        host: EngineHost,
        *,
        progress: Callable[[str], None] | None = None,
        hooks: Sequence[Hook] | None = None,
        sinks: Sequence[Callable[[Path], None]] | None = None,
        parallelism: int | None = None,
    ):
        self.jobs = host.jobs
        self.parallelism = parallelism  # overrides every spec's parallelismSpec when set
        self.root = self.jobs.root
        self.progress = progress or (lambda msg: log.info(msg))
        self._hooks = hooks
        self._sinks = sinks

    @property
    def hooks(self) -> Sequence[Hook]:
        if self._hooks is None:
            self._hooks = entry_points(HOOK_GROUP)
        return self._hooks

    @property
    def sinks(self) -> Sequence[Callable[[Path], None]]:
        if self._sinks is None:
            self._sinks = entry_points(SINK_GROUP)
        return self._sinks

    def next_job(self) -> JobInfo | None:
        return self.jobs.next_job()

    def run_until_idle(self) -> list[JobInfo]:
        self.jobs.recover()
        done = []
        while (job := self.jobs.next_job()) is not None:
            done.append(self.run_job(job))
        return done

    # -- one job ------------------------------------------------------------------------
    def run_job(self, job: JobInfo) -> JobInfo:
        claimed = self.jobs.claim(job)
        self.progress(f"{job.pipeline}@{job.id}: starting")
        if claimed.blocked:
            return self._finish(claimed, [], state=JOB_UNRUNNABLE, reason=claimed.blocked)

        inputs = {}
        by_repo = {(r.repo, r.branch): r.id for r in claimed.inputs}
        with gc_paused():
            for pin in specmod.pfs_inputs(claimed.spec["input"]):
                cid = by_repo.get((pin.repo, pin.branch))
                if cid is not None:
                    inputs[pin.name] = (pin.repo, cid, self.jobs.input_files(pin.repo, cid))
            datums = enumerate_datums(claimed.spec["input"], inputs)
            runs: dict[str, _DatumRun] = {}
            for d in datums:
                h = d.hash(claimed.salt)
                runs.setdefault(h, _DatumRun(d, h))
            known = self.jobs.succeeded(job.pipeline, runs)
        for h, ran_in in known.items():
            runs[h].state = SKIPPED if ran_in != job.id else RECOVERED
        todo = [r for r in runs.values() if r.state == "pending"]

        if claimed.is_service:
            try:
                url = self.jobs.start_service(claimed, datums[0] if datums else None)
            except Exception as e:  # the service could not start: the job says why
                return self._finish(claimed, runs.values(), state=JOB_FAILURE, reason=str(e))
            for r in runs.values():
                r.state = SUCCESS
            return self._finish(
                claimed, runs.values(), state=JOB_SUCCESS, reason=f"service running at {url}"
            )

        total = len(runs)
        self.progress(
            f"{job.pipeline}@{job.id}: {total} datums, {total - len(todo)} unchanged, "
            f"{len(todo)} to process"
        )
        job_dir, log_dir = self.jobs.work_dir(job), self.jobs.log_dir(job)
        log_dir.mkdir(parents=True, exist_ok=True)
        try:
            tries = claimed.spec.get("datumTries") or DEFAULT_DATUM_TRIES
            if todo:
                if (claimed.spec.get("transform") or {}).get("datumBatching"):
                    self._run_batched(claimed, todo, job_dir, log_dir, tries)
                else:
                    self._run_each(claimed, todo, job_dir, log_dir, tries)
        except Exception as e:  # an engine error fails this job, not the runner
            log.exception("job %s@%s crashed the engine", job.pipeline, job.id)
            for r in todo:
                if r.state == "pending":
                    r.state, r.reason = FAILED, f"engine error: {e}"
        finally:
            self.jobs.discard_work(job)
        failed = [r for r in runs.values() if r.state == FAILED]
        if not failed:
            why = None if runs else no_datums_reason(claimed.spec["input"], inputs)
            return self._finish(claimed, runs.values(), state=JOB_SUCCESS, reason=why)
        first = failed[0]
        reason = (
            first.reason
            if total == 1
            else f"{len(failed)} of {total} datums failed; first {', '.join(first.datum.paths)}: "
            f"{first.reason}"
        )
        return self._finish(claimed, runs.values(), state=JOB_FAILURE, reason=reason)

    def workers(self, spec: dict) -> int:
        """How many datum processes run at once: the override, else the spec's
        ``parallelismSpec.constant``, else the machine's cores."""
        cores = os.cpu_count() or 1
        if self.parallelism:
            return max(1, self.parallelism)
        constant = (spec.get("parallelismSpec") or {}).get("constant")
        return max(1, int(constant)) if constant else cores

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
                self.jobs.materialize(f.hash, mount / f.path.lstrip("/"))
        (pfs / "out").mkdir(parents=True)
        (run.dir / "control").mkdir()

    def _env(self, claimed: ClaimedJob, pfs: Path, run: _DatumRun | None) -> dict[str, str]:
        job = claimed.job
        env = base_env(claimed.spec.get("transform") or {}, pfs)
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

    def _exec(
        self, spec: dict, cmd: list[str], stdin: str | None, env: dict, cwd: Path, log_path: Path
    ) -> tuple[bool, str]:
        timeout = seconds(spec.get("datumTimeout"))
        accept = set((spec.get("transform") or {}).get("acceptReturnCode") or [])
        workdir = (spec.get("transform") or {}).get("workingDir")
        if workdir:
            cwd = Path(rewrite_pfs(workdir, Path(env[PFS_ROOT_ENV])))
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
        return False, last_line(log_path) or f"exited with code {proc.returncode}"

    def _run_one(
        self, claimed: ClaimedJob, run: _DatumRun, job_dir: Path, log_dir: Path, tries: int
    ) -> None:
        """One datum, retried up to ``tries`` times; its success is recorded before returning."""
        run.started = time.time()
        while run.tries < tries:
            run.tries += 1
            self._materialize(run, job_dir)
            pfs = run.dir / "pfs"
            cmd, stdin = command(claimed.spec["transform"], pfs)
            ok, reason = self._exec(
                claimed.spec,
                cmd,
                stdin,
                self._env(claimed, pfs, run),
                run.dir,
                log_dir / f"{run.hash}.log",
            )
            if ok:
                self._record_success(claimed.job, run)
                return
            run.reason = reason
            if GATE_BLOCKED in reason:
                break  # the gate's decision, not a transient error: another try decides alike
        run.state, run.finished = FAILED, time.time()

    def _run_each(
        self, claimed: ClaimedJob, todo: list[_DatumRun], job_dir: Path, log_dir: Path, tries: int
    ) -> None:
        job = claimed.job
        parallel = min(self.workers(claimed.spec), len(todo))
        done = 0
        lock = threading.Lock()

        def one(run: _DatumRun) -> None:
            nonlocal done
            self._run_one(claimed, run, job_dir, log_dir, tries)
            with lock:
                done += 1
                self.progress(f"{job.pipeline}@{job.id}: datum {done}/{len(todo)} {run.state}")

        if parallel == 1:
            for run in todo:
                one(run)
        else:  # each datum is its own process: threads only wait on them
            with ThreadPoolExecutor(parallel) as pool:
                list(pool.map(one, todo))

    def _run_batched(
        self, claimed: ClaimedJob, todo: list[_DatumRun], job_dir: Path, log_dir: Path, tries: int
    ) -> None:
        """One process per worker, each handed its share of the datums through a manifest.

        With ``n`` workers the datums are dealt into ``n`` shards run at once, as Pachyderm
        spreads a job's datums over a pipeline's workers; each worker is told its share of
        the cores (``TF_NUM_INTRAOP_THREADS``, ``OMP_NUM_THREADS``) so they do not fight."""
        job = claimed.job
        shards = min(self.workers(claimed.spec), len(todo))
        if shards == 1:
            self._run_shard(claimed, todo, job_dir, log_dir, tries, shard=0, of=1)
            return
        parts = [todo[i::shards] for i in range(shards)]
        self.progress(f"{job.pipeline}@{job.id}: {len(todo)} datums over {shards} workers")
        with ThreadPoolExecutor(shards) as pool:
            list(
                pool.map(
                    lambda i: self._run_shard(
                        claimed, parts[i], job_dir, log_dir, tries, shard=i, of=shards
                    ),
                    range(shards),
                )
            )

    def _run_shard(
        self,
        claimed: ClaimedJob,
        todo: list[_DatumRun],
        job_dir: Path,
        log_dir: Path,
        tries: int,
        *,
        shard: int,
        of: int,
    ) -> None:
        job = claimed.job
        name = "" if of == 1 else f"-w{shard}"
        pending = list(todo)
        attempt = 0
        while pending and attempt < tries:
            attempt += 1
            manifest = job_dir / f"datums{name}-{attempt}.jsonl"
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
            pfs = job_dir / f"pfs{name}"
            pfs.mkdir(exist_ok=True)
            cmd, stdin = command(claimed.spec["transform"], pfs)
            env = self._env(claimed, pfs, None)
            env[DATUM_MANIFEST_ENV] = str(manifest)
            if of > 1:
                threads = str(max(1, (os.cpu_count() or 1) // of))
                user_env = (claimed.spec.get("transform") or {}).get("env") or {}
                for var in THREAD_ENV:
                    if var not in user_env:
                        env[var] = threads
                env[WORKER_ENV] = f"{shard}/{of}"
            for ref_input, commit in {(p.input, p.commit) for r in pending for p in r.datum.parts}:
                env[f"{ref_input}_COMMIT"] = commit
            ok, reason = self._exec(
                claimed.spec, cmd, stdin, env, job_dir, log_dir / f"job{name}.log"
            )
            still, done = [], []
            for run in pending:
                control = run.dir / "control"
                if (control / "log.txt").exists():
                    with open(log_dir / f"{run.hash}.log", "a", encoding="utf-8") as out:
                        out.write(
                            (control / "log.txt").read_text(encoding="utf-8", errors="replace")
                        )
                if (control / DONE_MARKER).exists():
                    done.append(run)
                elif (control / FAILED_MARKER).exists():
                    run.reason = (control / FAILED_MARKER).read_text(encoding="utf-8") or "failed"
                    still.append(run)
                else:
                    run.reason = (
                        reason if not ok else "the process ended before it reached this datum"
                    )
                    still.append(run)
            for i in range(0, len(done), RECORD_CHUNK):  # the process has ended: record in bulk
                self._record_successes(job, done[i : i + RECORD_CHUNK])
            self.progress(
                f"{job.pipeline}@{job.id}: {'worker ' + str(shard) + ' ' if of > 1 else ''}"
                f"batch attempt {attempt}: {len(pending) - len(still)} datums done, "
                f"{len(still)} failed"
            )
            pending = still
        for run in pending:
            run.state, run.finished = FAILED, time.time()

    def _record_successes(self, job: JobInfo, runs: Sequence[_DatumRun]) -> None:
        problems = self.jobs.record_successes(job, [(r.hash, r.dir / "pfs" / "out") for r in runs])
        now = time.time()
        for run in runs:
            if run.hash in problems:
                run.state, run.reason = FAILED, problems[run.hash]
            else:
                run.state, run.finished = SUCCESS, now

    def _record_success(self, job: JobInfo, run: _DatumRun) -> None:
        self._record_successes(job, [run])

    # -- finishing ----------------------------------------------------------------------
    def _finish(self, claimed: ClaimedJob, runs, *, state: str, reason: str | None = None):
        with gc_paused():
            final, emitted = self.jobs.finish(
                claimed, list(runs), state=state, reason=reason, hooks=self.hooks
            )
        job = claimed.job
        self.progress(
            f"{job.pipeline}@{job.id}: {final.state}"
            + (f" ({final.reason})" if final.reason else "")
        )
        if emitted:
            for sink in self.sinks:
                try:
                    sink(self.root)
                except Exception:
                    log.exception("event sink %s failed", sink)
        return final


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run a Tulip store's queued pipeline jobs until idle."
    )
    parser.add_argument("--root", required=True)
    parser.add_argument(
        "--parallelism",
        type=int,
        default=int(os.environ.get(PARALLELISM_ENV) or 0) or None,
        help="datum processes per job, overriding every spec's parallelismSpec "
        f"(default: ${PARALLELISM_ENV}, else the spec's, else the cores)",
    )
    args = parser.parse_args(argv)
    if args.parallelism is not None and args.parallelism < 1:
        parser.error(f"--parallelism must be at least 1, not {args.parallelism}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    from .connect import open_backend

    root = Path(args.root)
    while True:
        with runner_lock(root) as got:
            if not got:
                return 0
            store = open_backend(root, backend="embedded")
            try:
                Runner(store, parallelism=args.parallelism).run_until_idle()  # type: ignore[arg-type]
            except Exception:
                traceback.print_exc()
                return 1
            finally:
                store.close()
        # Lock released: a job queued just now, by a process that saw the lock held, is ours.
        store = open_backend(root, backend="embedded")
        try:
            pending = Runner(store).next_job()  # type: ignore[arg-type]
        finally:
            store.close()
        if not pending:
            return 0


if __name__ == "__main__":
    sys.exit(main())
