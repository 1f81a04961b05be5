"""``apply_review``: a reviewer's decisions on an audit's findings become one USER commit on the
audited data branch, and one commit of the review ledger.

Every relabel, exclusion and rename lands in one atomic fix commit: moves are copies of the
stored content plus deletes, so nothing is uploaded again, and Embed (whose records come from
a content-addressed cache) embeds nothing again for a rename. The commit's description says
what was done; its metadata names the review, the audit, the finding ids, the decisions and
who made them (``pipelines.layout.REVIEW_*``). The fix is meant for the commit that was
audited: if the branch moved since, it is refused (``BranchMoved``) unless ``rebase`` shows
that every decided file is unchanged in the new head.

Order, so that nothing is ever half-written: the fix commit is opened, the ledger commit
(the record, and the accept/defer lines by content hash) names it, then the fix commit
lands with its metadata. Killed before the end, the fix never lands and the ledger's record
is void (``auditor.review.ledger`` only counts records whose fix exists).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from auditor.findings import CLASS_LEVEL
from pipelines.backend import Backend
from pipelines.errors import BranchMoved
from pipelines.info import iso
from pipelines.layout import (
    REVIEW_AUDIT_KEY,
    REVIEW_BY_KEY,
    REVIEW_DECISIONS_KEY,
    REVIEW_FINDINGS_KEY,
    REVIEW_KEY,
    REVIEW_RECORD_KEY,
    REVIEW_SCHEMA,
    REVIEWS_REPO,
    label_of,
)

from .decisions import Decision, Effects, InvalidDecisions, expand
from .ledger import LedgerEntry, record_path, record_review
from .plan import ReviewPlan, make_plan
from .target import ReviewTarget, content_hashes, load_target, require_commit

#: past this many, the commit metadata holds counts and the record the full lists
METADATA_LIST_LIMIT = 200

Progress = Callable[[str, int, int], None]


@dataclass
class ReviewResult:
    review: str | None  # None for a dry run
    audit: str
    data: dict
    base: str
    by: str
    description: str
    plan: ReviewPlan
    commit: dict | None = None  # the fix commit: {"repo", "branch", "id"}
    ledger: dict | None = None  # {"repo", "commit"} of the ledger commit
    dry_run: bool = False

    def as_dict(self) -> dict:
        p = self.plan
        return {
            "commit": self.commit,
            "moved": len(p.moves),
            "excluded": len(p.excluded),
            "accepted": len(p.accepted),
            "deferred": len(p.deferred),
            "renamed": [
                {"from": r.source, "to": r.to, "merge": r.merge, "files": p.renamed(r)}
                for r in p.renames
            ],
            "dry_run": self.dry_run,
            "review": self.review,
            "audit": self.audit,
            "data": self.data,
            "base": self.base,
            "by": self.by,
            "description": self.description,
            "ledger": self.ledger,
            "classes": {"before": p.classes_before, "after": p.classes_after},
            "moves": [
                {"from": m.source.path, "to": m.dest, "finding": m.finding, "reason": m.reason}
                for m in p.moves
            ],
            "excluded_files": [f.path for f, _e in p.excluded],
        }


def default_reviewer() -> str:
    return os.environ.get("USER") or os.environ.get("USERNAME") or "unknown"


def apply_review(
    backend: Backend,
    audit_ref: str,
    decisions: Iterable[Decision],
    *,
    by: str,
    dry_run: bool = False,
    new_class: bool = False,
    rebase: bool = False,
    via: str = "cli",
    source: str = "decisions",
    progress: Progress | None = None,
) -> ReviewResult:
    """Apply ``decisions`` on the findings of the audit ``audit_ref`` (see
    ``auditor.review.target``). ``dry_run`` plans and changes nothing. ``new_class`` allows a
    relabel into a class the data does not have. ``rebase`` applies to a branch that moved
    since the audit, if no decided file changed. ``by`` is the reviewer; ``via`` how (cli,
    report, label-studio...)."""
    step = progress or (lambda _s, _d, _t: None)
    decisions = list(decisions)
    if not decisions:
        raise InvalidDecisions(f"{source} holds no decisions; nothing to apply")
    target = load_target(backend, audit_ref)
    data = require_commit(target)
    repo, audited = data["repo"], data["commit"]
    branch = data.get("branch") or backend.inspect_commit(repo, audited).branch or "master"
    head = backend.inspect_branch(repo, branch).head
    step("plan", 0, 3)
    base = audited
    audited_hashes = None
    if head != audited:
        if not rebase:
            raise BranchMoved(
                f"{repo}@{branch} moved since {target.source} audited {audited}: its head is "
                f"now {head}; audit the head and review that audit, or pass --rebase to apply "
                "these decisions to the head if the files they decide are unchanged there"
            )
        base = head
        audited_hashes = {f.path: f.hash for f in backend.walk_files(repo, audited)}
    files = list(backend.walk_files(repo, base))
    classes = {label_of(f.path) for f in files} - {""}
    effects = expand(
        decisions,
        target.findings,
        classes=classes,
        new_class=new_class,
        source=source,
        audit=target.source,
    )
    plan = make_plan(effects, files, base=base, audited=audited_hashes, where=f"{repo}@{base}")
    step("plan", 1, 3)
    description = describe(target.source, plan, effects, by=by)
    result = ReviewResult(
        review=None,
        audit=target.source,
        data={**data, "branch": branch},
        base=base,
        by=by,
        description=description,
        plan=plan,
        dry_run=dry_run,
    )
    if dry_run:
        step("plan", 3, 3)
        return result

    review_id = uuid.uuid4().hex
    when = iso(time.time())
    hashes = content_hashes(
        backend, repo, base, [k.file.path for k in (*plan.accepted, *plan.deferred)]
    )
    record = _record(review_id, when, target, result, effects, via=via)
    path = record_path(repo, audited, review_id)

    def entries(fix: dict | None) -> list[LedgerEntry]:
        return [
            LedgerEntry(
                sha256=hashes[k.file.path],
                action=k.effect.action,
                check=k.effect.check,
                label=k.label,
                path=k.file.path,
                finding=k.effect.finding,
                review=review_id,
                by=by,
                time=when,
                fix=fix,
            )
            for k in (*plan.accepted, *plan.deferred)
            if k.file.path in hashes
        ]

    if not plan.changes_files:
        ledger_commit = record_review(backend, record, entries(None))
        result.review, result.ledger = review_id, {"repo": REVIEWS_REPO, "commit": ledger_commit}
        step("plan", 3, 3)
        return result
    with backend.start_commit(repo, branch, description=description, expect_head=base) as w:
        for p in plan.deletes():
            w.delete(p)
        for m in plan.moves:
            w.copy(m.dest, m.source)
        fix = {"repo": repo, "branch": branch, "commit": w.id}
        record["fix"] = fix
        ledger_commit = record_review(backend, record, entries(fix))
        step("plan", 2, 3)
        w.set_metadata(
            _metadata(
                review_id, target.source, by, effects, f"{REVIEWS_REPO}@{ledger_commit}:{path}"
            )
        )
    step("plan", 3, 3)
    result.review = review_id
    result.commit = {"repo": repo, "branch": branch, "id": w.id}
    result.ledger = {"repo": REVIEWS_REPO, "commit": ledger_commit}
    return result


def describe(audit: str, plan: ReviewPlan, effects: Effects, *, by: str) -> str:
    """The fix commit's description: what was done, in one line."""
    parts = []
    for r in plan.renames:
        n = plan.renamed(r)
        verb = "merge" if r.merge else "rename"
        parts.append(f"{verb} /{r.source} -> /{r.to} ({n} files)")
    relabelled = [m for m in plan.moves if m.reason == "relabel"]
    if relabelled:
        parts.append(f"relabel {_files(len(relabelled))}")
    if plan.excluded:
        parts.append(f"exclude {_files(len(plan.excluded))}")
    if plan.accepted:
        parts.append(f"accept {_files(len(plan.accepted))}")
    if plan.deferred:
        parts.append(f"defer {_files(len(plan.deferred))}")
    if effects.class_level:
        parts.append(f"{len(effects.class_level)} class-level decisions")
    return f"review of {audit} by {by}: " + "; ".join(parts or ["no changes"])


def _files(n: int) -> str:
    return f"{n} file{'s' if n != 1 else ''}"


def _clears_failures(target: ReviewTarget, effects: Effects) -> bool:
    """Did the review accept every failing finding (the commit can then be a baseline)?"""
    failing = [i for i, f in target.findings.items() if f.get("severity") == "fail"]
    if not failing:
        return False
    accepted = {d.finding for d in effects.class_level if d.action == "accept"}
    by_finding: dict[str, set[str]] = {}
    for e in effects.files.values():
        if e.action == "accept":
            by_finding.setdefault(e.finding, set()).add(e.path)
    for fid in failing:
        files = set(target.findings[fid].get("files") or [])
        if fid not in accepted and not (files and files <= by_finding.get(fid, set())):
            return False
    return True


def _record(
    review_id: str,
    when: str,
    target: ReviewTarget,
    result: ReviewResult,
    effects: Effects,
    *,
    via: str,
) -> dict:
    decided = sorted({d.finding for d in effects.decisions})
    return {
        "schema": REVIEW_SCHEMA,
        "id": review_id,
        "time": when,
        "by": result.by,
        "via": via,
        "audit": target.audit,
        "audit_source": target.source,
        "audit_verdict": target.document.get("verdict"),
        "data": result.data,
        "base": result.base,
        "fix": None,
        "description": result.description,
        "findings": decided,
        "class_level": sorted(
            fid for fid in decided if target.findings[fid].get("check") in CLASS_LEVEL
        ),
        "decisions": [d.to_dict() for d in effects.decisions],
        "introduced_by": _blamed(
            target, sorted({d.finding for d in effects.decisions if d.action in CHANGES})
        ),
        "counts": {
            k: v
            for k, v in result.as_dict().items()
            if k in ("moved", "excluded", "accepted", "deferred")
        },
        "renamed": result.as_dict()["renamed"],
        "clears_failures": _clears_failures(target, effects),
    }


#: the actions that change files (accept and defer only record)
CHANGES = ("relabel", "exclude", "rename", "merge")


def _blamed(target: ReviewTarget, decided: list[str]) -> list[dict]:
    """The commits the audit blamed for the findings the fix changes files for: what it
    repairs."""
    seen: dict[tuple[str, str], dict] = {}
    for fid in decided:
        for c in target.findings[fid].get("introduced_by") or []:
            if isinstance(c, dict) and c.get("repo") and c.get("commit"):
                seen.setdefault(
                    (c["repo"], c["commit"]), {"repo": c["repo"], "commit": c["commit"]}
                )
    return list(seen.values())


def _metadata(review_id: str, audit: str, by: str, effects: Effects, record: str) -> dict[str, str]:
    ids = sorted({d.finding for d in effects.decisions})
    decisions = [d.to_dict() for d in effects.decisions]
    return {
        REVIEW_KEY: review_id,
        REVIEW_AUDIT_KEY: audit,
        REVIEW_BY_KEY: by,
        REVIEW_RECORD_KEY: record,
        REVIEW_FINDINGS_KEY: json.dumps(ids, separators=(",", ":"))
        if len(ids) <= METADATA_LIST_LIMIT
        else f"{len(ids)} findings: see {record}",
        REVIEW_DECISIONS_KEY: json.dumps(decisions, separators=(",", ":"))
        if len(decisions) <= METADATA_LIST_LIMIT
        else f"{len(decisions)} decisions: see {record}",
    }
