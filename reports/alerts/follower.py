"""Alerts for a Pachyderm cluster: follow its Audit and Convert jobs, announce each once.

On the embedded engine, events are written by the job hooks in the transaction that records
the job. A cluster runs its jobs itself, so nothing local sees them finish. The follower
closes that gap: it polls the cluster's finished ``Audit`` and ``Convert`` jobs (the verdicts
the Audit stage writes, and gate refusals), runs the same ``tulip.job_hooks`` over each
(``auditor.events``: ``audit.failed``, ``audit.warned``, ``audit.recovered``,
``gate.blocked``), and writes their events into a local store's outbox, the alerts' home,
from which the usual deliverer (``reports.alerts.delivery``) sends signed webhooks.

* **Exactly once per job.** A job's events and the row that says it was announced
  (``followed_jobs``) are written in one transaction: a follower killed at any point either
  announced the job (and never will again) or did not (and the next one does).
* **Its own durable cursor.** ``followed_clusters.watermark``: every job created before it
  was announced, so a poll lists only the jobs since (newest first, in growing pages).
  It only moves past a job once that job has finished and been announced.
* **Starts from now.** A new follower announces jobs created from the moment it first ran,
  not the cluster's history, unless given ``replay_since`` (``tulip alerts follow --replay``).

Cluster job times and the local clock are compared; keep them in sync (NTP) or replay a
little. Library code only: nothing here prints.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pipelines.backend import Backend
from pipelines.embedded.jobs import JobFinished
from pipelines.embedded.store import EmbeddedStore
from pipelines.errors import TulipError
from pipelines.info import JobInfo
from pipelines.layout import AUDIT, CONVERT, read_optional

from .tables import AlertTables

log = logging.getLogger("tulip.alerts.follow")

FOLLOWED = (AUDIT, CONVERT)
FIRST_PAGE = 50


@dataclass
class FollowStats:
    jobs: int = 0  # newly announced (with or without events)
    events: list[str] = field(default_factory=list)
    waiting: int = 0  # jobs still running, announced once they finish
    watermark: float = 0.0


def _hooks() -> list[Callable[[JobFinished], None]]:
    from pipelines.runner import HOOK_GROUP, entry_points

    return entry_points(HOOK_GROUP)


class Follower:
    """Follows one cluster into one local alerts home (an embedded store)."""

    def __init__(
        self,
        cluster: Backend,
        home: EmbeddedStore,
        *,
        cluster_id: str,
        replay_since: float | None = None,
        pipelines: Sequence[str] = FOLLOWED,
        hooks: Sequence[Callable[[JobFinished], None]] | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.cluster = cluster
        self.home = home
        self.cluster_id = cluster_id
        self.pipelines = tuple(pipelines)
        self.hooks = list(_hooks() if hooks is None else hooks)
        self.clock = clock
        self.tables = AlertTables(home.db)
        start = clock() if replay_since is None else replay_since
        # One cursor per pipeline: a pipeline's jobs are created in order, two pipelines' not.
        self.watermarks = {
            p: self.tables.follow_watermark(f"{cluster_id}#{p}", start) for p in self.pipelines
        }

    def _jobs_since(self, pipeline: str, since: float) -> list[JobInfo]:
        """The pipeline's jobs created at or after ``since``, oldest first."""
        limit = FIRST_PAGE
        while True:
            jobs = self.cluster.list_jobs(pipeline, limit=limit)
            if len(jobs) < limit or jobs[-1].created < since:
                break
            limit *= 4
        return sorted((j for j in jobs if j.created >= since), key=lambda j: (j.created, j.id))

    def poll(self) -> FollowStats:
        """Announce every finished, unannounced job since the cursor; then move the cursor."""
        stats = FollowStats()
        present = {p.name for p in self.cluster.list_pipelines()}
        for pipeline in (p for p in self.pipelines if p in present):
            since = self.watermarks[pipeline]
            jobs = self._jobs_since(pipeline, since)
            done = self.tables.followed(self.cluster_id, pipeline, [j.id for j in jobs])
            oldest_waiting: float | None = None
            newest_done: float | None = None
            for job in jobs:
                if not job.done:
                    stats.waiting += 1
                    oldest_waiting = job.created if oldest_waiting is None else oldest_waiting
                    continue
                newest_done = job.created
                if job.id in done:
                    continue
                try:
                    stats.events += self._announce(job)
                except _AlreadyAnnounced:
                    continue
                stats.jobs += 1
            # Jobs created before the oldest running one (before the newest finished one when
            # none runs) are all announced; equal timestamps stay inside the window.
            mark = oldest_waiting if oldest_waiting is not None else newest_done
            if mark is not None and mark > since:
                self.tables.advance_watermark(f"{self.cluster_id}#{pipeline}", mark)
                self.watermarks[pipeline] = mark
        stats.watermark = min(self.watermarks.values(), default=0.0)
        return stats

    def _announce(self, job: JobInfo) -> list[str]:
        """Run the job hooks over one finished job; write its events and its mark at once."""
        output = job.output_commit or job.id
        try:
            inputs = list(self.cluster.inspect_commit(job.pipeline, output).direct_provenance)
        except TulipError:
            inputs = []
        found: list[tuple[str, str, dict]] = []

        def emit(type_: str, subject: str, data: dict) -> str:
            found.append((type_, subject, {**data, "cluster": self.cluster_id}))
            return ""

        outcome = JobFinished(
            store=self.cluster,
            job=job,
            spec={},
            inputs=inputs,
            _read=lambda path: read_optional(self.cluster, job.pipeline, output, path),
            _emit=emit,
        )
        for hook in self.hooks:
            before = len(found)
            try:
                hook(outcome)
            except Exception:  # as in the engine: a broken hook loses its own events only
                log.exception("job hook %s failed on %s@%s", hook, job.pipeline, job.id)
                del found[before:]
        with self.home.db.transaction() as conn:
            ids = [self.home.outbox.emit(conn, t, s, d, at=self.clock()) for t, s, d in found]
            if not self.tables.mark_followed(
                conn, self.cluster_id, job.pipeline, job.id, ids, self.clock()
            ):
                raise _AlreadyAnnounced  # another follower won the race: undo ours
        return ids


class _AlreadyAnnounced(Exception):
    pass
