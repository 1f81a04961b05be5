"""The baseline of the commit-relative checks: which earlier data commit an audit compares with.

Drift, new labels and the previous commit's lookalikes (the gallery when no reference is
given) compare a commit with an earlier one. That earlier one must be data someone stood
behind: the nearest audited ancestor whose audit **did not fail**, or whose failures a review
accepted. Never a failed commit: comparing the fix of a bad commit with the bad commit would
tell the fix to undo itself ("tulips looks like orchids of the previous commit: rename it to
orchids").

The verdicts are the ones audits write onto the data commits' metadata
(``auditor.run.record_verdict``), so finding the baseline reads commit metadata only, one
commit per step back, and no audit documents. The choice, and the failed audits passed over,
go into the audit document (``baseline``) so the report can say what it compared with.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from auditor.review.ledger import reviews_of
from pipelines.backend import Backend
from pipelines.errors import CommitNotFound
from pipelines.layout import AUDIT_KEY, VERDICT_KEY

LAST_GOOD = "the last audit that did not fail"
REVIEWED = "an audit that failed, whose failures a review accepted"
NONE = "no earlier audit that did not fail"


@dataclass(frozen=True)
class Baseline:
    repo: str
    commit: str | None  # the data commit compared with; None when there is none
    verdict: str | None
    audit: str | None  # "<audit repo>@<commit>" when the audit was a pipeline's
    reason: str
    review: str | None = None  # the review that accepted its failures
    skipped: list[dict] = field(default_factory=list)  # failed audits passed over, newest first

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        """One line for people: what the audit compared with, and why."""
        if self.commit is None:
            head = f"no baseline ({self.reason})"
        else:
            head = f"{self.repo}@{self.commit} ({self.reason}, {self.verdict})"
        if self.skipped:
            passed = ", ".join(f"{self.repo}@{s['commit'][:12]}" for s in self.skipped[:3])
            more = f" and {len(self.skipped) - 3} more" if len(self.skipped) > 3 else ""
            n = len(self.skipped)
            head += f"; passed over {n} failed audit{'s' if n != 1 else ''}: {passed}{more}"
        return head


def select_baseline(backend: Backend, repo: str, commit_id: str) -> Baseline:
    """The baseline of an audit of ``repo@commit_id``: its nearest ancestor whose audit did not
    fail, or failed and was accepted in a review."""
    skipped: list[dict] = []
    try:
        commit = backend.inspect_commit(repo, commit_id)
    except CommitNotFound:
        return Baseline(repo, None, None, None, NONE)
    while commit.parent is not None:
        commit = backend.inspect_commit(repo, commit.parent)
        verdict = commit.metadata.get(VERDICT_KEY)
        if verdict is None:
            continue  # never audited
        audit = commit.metadata.get(AUDIT_KEY)
        if verdict != "fail":
            return Baseline(repo, commit.id, verdict, audit, LAST_GOOD, skipped=skipped)
        cleared = [
            r for r in reviews_of(backend, repo, commit.id) if r.document.get("clears_failures")
        ]
        if cleared:
            return Baseline(
                repo, commit.id, verdict, audit, REVIEWED, review=cleared[-1].id, skipped=skipped
            )
        skipped.append({"commit": commit.id, "verdict": verdict, "audit": audit})
    return Baseline(repo, None, None, None, NONE, skipped=skipped)
