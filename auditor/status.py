"""Where a commit set stands, and what the gate decided: the answer ``tulip wait commit``,
``tulip inspect commit`` and the model page give.

A data commit and everything the pipelines computed from it share one ID (a commit set).
Of its members, the audit commit holds the verdict (``audit.json``) and the Convert commit
holds the gate's decision: published (``optimized_graph.lite``, the gate open), or ``error``
set to the job's reason, whose first words are ``gate blocked:`` when the gate refused.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pipelines.backend import Backend
from pipelines.errors import CommitNotFound, RepoNotFound, TulipError
from pipelines.info import CommitInfo
from pipelines.layout import (
    AUDIT,
    AUDIT_FILE,
    GATE_BLOCKED,
    SPEC_SUFFIX,
    TFLITE_FILE,
    read_audit,
    stat_optional,
)

OPEN, BLOCKED, FAILED, RUNNING = "open", "blocked", "failed", "running"


class WaitTimedOut(TulipError):
    """``tulip wait commit --timeout`` ran out before the commit set finished."""


@dataclass(frozen=True)
class AuditVerdict:
    commit: CommitInfo
    verdict: str
    findings: int
    data: dict

    def as_dict(self) -> dict:
        return {
            "repo": self.commit.repo,
            "commit": self.commit.id,
            "verdict": self.verdict,
            "findings": self.findings,
            "data": self.data,
        }


@dataclass(frozen=True)
class GateState:
    """What the gate did for one model commit: ``open`` (a model was published), ``blocked``
    (the audit refused it), ``failed`` (the job failed for another reason) or ``running``."""

    commit: CommitInfo
    state: str
    reason: str | None = None
    audit: AuditVerdict | None = None

    def describe(self) -> str:
        audit = (
            f"audit {self.audit.verdict} ({self.audit.commit.repo}@{self.audit.commit.id})"
            if self.audit
            else "no audit found"
        )
        if self.state == OPEN:
            return f"open: {self.commit.repo}@{self.commit.id} published {TFLITE_FILE}; {audit}"
        if self.state == BLOCKED:
            return f"BLOCKED: {self.reason}; the model is carried over from the last good commit"
        if self.state == FAILED:
            return f"failed: {self.reason}"
        return f"running; {audit}"

    def as_dict(self) -> dict:
        return {
            "repo": self.commit.repo,
            "commit": self.commit.id,
            "state": self.state,
            "reason": self.reason,
            "audit": None if self.audit is None else self.audit.as_dict(),
        }


@dataclass(frozen=True)
class CommitSetStatus:
    id: str
    commits: list[CommitInfo]
    audits: list[AuditVerdict] = field(default_factory=list)
    gates: list[GateState] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return all(c.finished is not None for c in self.commits)

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "finished": self.finished,
            "commits": [c.as_dict() for c in self.commits],
            "audits": [a.as_dict() for a in self.audits],
            "gates": [g.as_dict() for g in self.gates],
        }


def audit_verdict(backend: Backend, commit: CommitInfo) -> AuditVerdict | None:
    """The verdict an audit commit holds of its own (None for any other commit)."""
    doc = read_audit(backend, commit)
    if doc is None:
        return None
    findings = doc.get("findings") if isinstance(doc.get("findings"), list) else []
    data = doc.get("data") if isinstance(doc.get("data"), dict) else {}
    return AuditVerdict(commit, str(doc.get("verdict")), len(findings), data)


def _audit_input(backend: Backend, commit: CommitInfo) -> AuditVerdict | None:
    """The audit among a model commit's direct inputs (the Audit repo first)."""
    refs = sorted(
        (r for r in commit.direct_provenance if not r.repo.endswith(SPEC_SUFFIX)),
        key=lambda r: (r.repo != AUDIT, r.repo),
    )
    for ref in refs:
        try:
            candidate = backend.inspect_commit(ref.repo, ref.id)
        except (CommitNotFound, RepoNotFound):
            continue
        if candidate.finished is not None and stat_optional(
            backend, candidate.repo, candidate.id, AUDIT_FILE
        ):
            return audit_verdict(backend, candidate)
    return None


def gate_state(backend: Backend, commit: CommitInfo) -> GateState | None:
    """The gate's decision for a model commit (one with an audit among its inputs, or one the
    gate blocked); None for a commit the gate does not stand in front of."""
    blocked = bool(commit.error and GATE_BLOCKED in commit.error)
    audit = _audit_input(backend, commit) if commit.direct_provenance else None
    if audit is None and not blocked:
        return None
    if commit.finished is None:
        return GateState(commit, RUNNING, audit=audit)
    if blocked:
        reason = commit.error[commit.error.index(GATE_BLOCKED) :]
        return GateState(commit, BLOCKED, reason, audit)
    if commit.error:
        return GateState(commit, FAILED, commit.error, audit)
    if stat_optional(backend, commit.repo, commit.id, TFLITE_FILE) is None:
        return None  # an audited output that is not a model (a report, say)
    return GateState(commit, OPEN, audit=audit)


def last_good_commit(
    backend: Backend, commit: CommitInfo, *, model_file: str = TFLITE_FILE
) -> CommitInfo | None:
    """The commit that really produced the model a failed or blocked commit carries over.

    Walks the parents for a finished commit without ``error`` whose ``model_file`` has the
    same content; if none has, the nearest one that holds a model at all.
    """
    carried = stat_optional(backend, commit.repo, commit.id, model_file)
    nearest = None
    current = commit
    while current.parent:
        try:
            current = backend.inspect_commit(commit.repo, current.parent)
        except CommitNotFound:
            break
        if current.error or current.finished is None:
            continue
        found = stat_optional(backend, current.repo, current.id, model_file)
        if found is None:
            continue
        if carried is None or found.hash == carried.hash:
            return current
        nearest = nearest or current
    return nearest


def commit_set_status(backend: Backend, commit_id: str) -> CommitSetStatus:
    commits = backend.commit_set(commit_id)
    audits, gates = [], []
    for c in commits:
        if c.finished is None:
            continue
        verdict = audit_verdict(backend, c)
        if verdict is not None:
            audits.append(verdict)
            continue
        gate = gate_state(backend, c)
        if gate is not None:
            gates.append(gate)
    return CommitSetStatus(commit_id, commits, audits, gates)


def wait_for_commit_set(
    backend: Backend,
    commit_id: str,
    *,
    timeout: float | None = None,
    progress: Callable[[CommitInfo], None] | None = None,
    poll: float = 1.0,
) -> CommitSetStatus:
    """Wait until every commit of the set has finished; ``progress(commit)`` hears of each as it
    finishes (those finished already first). Ends with the verdicts and the gate's decision."""
    deadline = None if timeout is None else time.monotonic() + timeout
    told: set[tuple[str, str]] = set()
    while True:
        step = poll if deadline is None else max(0.0, min(poll, deadline - time.monotonic()))
        try:
            commits = backend.wait_commit_set(commit_id, timeout=step)
        except TimeoutError:
            commits = backend.commit_set(commit_id)
        for c in sorted(commits, key=lambda c: (c.finished or 0, c.repo)):
            if c.finished is not None and (c.repo, c.id) not in told:
                told.add((c.repo, c.id))
                if progress is not None:
                    progress(c)
        if all(c.finished is not None for c in commits):
            return commit_set_status(backend, commit_id)
        if deadline is not None and time.monotonic() >= deadline:
            pending = ", ".join(f"{c.repo}@{c.id}" for c in commits if c.finished is None)
            raise WaitTimedOut(
                f"commit set {commit_id} not finished after {timeout:g}s: still running {pending}"
            )
