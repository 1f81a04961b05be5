"""Alert events that audits and the gate raise, written in the transaction that records the job.

Registered as the ``tulip.job_hooks`` entry point ``audit``; the local engine calls
:func:`on_job_finished` with each finished job (``pipelines.embedded.jobs.JobFinished``).
Delivery (signed webhooks) is the business of ``reports.alerts``; here we only decide what
happened:

* ``audit.failed`` / ``audit.warned``: an audit's verdict;
* ``audit.recovered``: the first audit that does not fail after one that did (pass, or a warn,
  which leaves the gate open); when the audited commit is a review's fix commit, the event
  names the review (``review``: who fixed what, from which audit);
* ``gate.blocked``: Convert refused to publish a model because its audit failed.
"""

from __future__ import annotations

from typing import Any

from pipelines.errors import TulipError
from pipelines.layout import (
    AUDIT,
    AUDIT_FILE,
    GATE_BLOCKED,
    REPORT_FILE,
    REVIEW_AUDIT_KEY,
    REVIEW_BY_KEY,
    REVIEW_KEY,
    REVIEW_RECORD_KEY,
    audit_before,
    parse_json,
)

TOP_FINDINGS = 5


def _summary(doc: dict, audit_repo: str, audit_commit: str) -> dict[str, Any]:
    findings = doc.get("findings") or []
    blamed: dict[tuple[str, str], dict] = {}
    for f in findings:
        for c in f.get("introduced_by") or []:
            blamed.setdefault((c["repo"], c["commit"]), {"repo": c["repo"], "commit": c["commit"]})
    return {
        "verdict": doc.get("verdict"),
        "data": doc.get("data"),
        "reference": doc.get("reference"),
        "summary": {
            k: v
            for k, v in (doc.get("summary") or {}).items()
            if k in ("images", "findings", "severities")
        },
        "top_findings": [
            {
                k: f.get(k)
                for k in ("check", "severity", "classes", "score", "message", "introduced_by")
            }
            | {"files": len(f.get("files") or [])}
            for f in findings[:TOP_FINDINGS]
        ],
        "blamed_commits": list(blamed.values()),
        "audit": {"repo": audit_repo, "commit": audit_commit},
        "report": {"repo": audit_repo, "commit": audit_commit, "path": REPORT_FILE},
    }


def _previous_verdict(outcome) -> str | None:
    before = audit_before(outcome.store, outcome.job.pipeline, outcome.job.id)
    return None if before is None else before[1].get("verdict")


def _review_of(outcome, data: dict) -> dict | None:
    """The review whose fix commit this audit audited, from the commit's metadata."""
    try:
        commit = outcome.store.inspect_commit(str(data.get("repo")), str(data.get("commit")))
    except TulipError:
        return None
    meta = commit.metadata
    if REVIEW_KEY not in meta:
        return None
    return {
        "id": meta[REVIEW_KEY],
        "by": meta.get(REVIEW_BY_KEY),
        "audit": meta.get(REVIEW_AUDIT_KEY),
        "fix": {"repo": commit.repo, "commit": commit.id, "description": commit.description},
        "record": meta.get(REVIEW_RECORD_KEY),
    }


def on_job_finished(outcome) -> None:
    job = outcome.job
    if job.state == "success":
        raw = outcome.read(AUDIT_FILE)
        if raw is None:
            return
        doc = parse_json(raw, source=f"{job.pipeline}@{job.id}:{AUDIT_FILE}")
        data = doc.get("data") or {}
        subject = f"{data.get('repo')}@{data.get('commit')}"
        payload = _summary(doc, job.pipeline, job.id)
        verdict = doc.get("verdict")
        if verdict == "fail":
            outcome.emit("audit.failed", subject, payload)
        elif _previous_verdict(outcome) == "fail":
            # The incident is over: the gate is open again (a warn only queues images for review).
            review = _review_of(outcome, data)
            if review is not None:
                payload["review"] = review
            outcome.emit("audit.recovered", subject, payload)
        elif verdict == "warn":
            outcome.emit("audit.warned", subject, payload)
        return
    if job.reason and GATE_BLOCKED in job.reason:
        audit = next((r for r in outcome.inputs if r.repo == AUDIT), None)
        outcome.emit(
            "gate.blocked",
            f"{job.pipeline}@{job.id}",
            {
                "pipeline": job.pipeline,
                "job": job.id,
                "reason": job.reason,
                "audit": None if audit is None else {"repo": audit.repo, "commit": audit.id},
                "inputs": [{"repo": r.repo, "commit": r.id} for r in outcome.inputs],
            },
        )
