"""``list_review``: the findings of an audit as a review queue, each with its id and the
decisions made on it so far (by reviews of this audit's data commit, and, for files whose
content a review decided before, by the ledger)."""

from __future__ import annotations

from dataclasses import dataclass, field

from auditor.findings import CLASS_LEVEL, id_of
from pipelines.backend import Backend

from .ledger import load_ledger, reviews_of
from .target import ReviewTarget, content_hashes, load_target


@dataclass
class ReviewListing:
    target: ReviewTarget
    findings: list[dict] = field(default_factory=list)
    reviews: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        doc = self.target.document
        return {
            "audit": self.target.source,
            "data": self.target.data,
            "verdict": doc.get("verdict"),
            "findings": self.findings,
            "reviews": self.reviews,
            "not_reflagged": (doc.get("review") or {}).get("not_reflagged", 0),
            "classes": sorted((doc.get("summary") or {}).get("classes") or {}),
        }


def list_review(backend: Backend | None, audit_ref: str) -> ReviewListing:
    """The review queue of the audit ``audit_ref``."""
    target = load_target(backend, audit_ref)
    data = target.data
    listing = ReviewListing(target)
    decided: dict[str, list[dict]] = {}
    if backend is not None and data.get("commit"):
        for r in reviews_of(backend, data["repo"], data["commit"]):
            doc = r.document
            listing.reviews.append(
                {k: doc.get(k) for k in ("id", "time", "by", "via", "fix", "description", "counts")}
            )
            for d in doc.get("decisions") or []:
                decided.setdefault(d.get("finding"), []).append(
                    {**d, "by": doc.get("by"), "time": doc.get("time"), "review": doc.get("id")}
                )
        _add_ledger(backend, target, decided)
    for f in target.document.get("findings") or []:
        fid = id_of(f)
        ds = decided.get(fid, [])
        listing.findings.append(
            {
                "id": fid,
                "check": f.get("check"),
                "severity": f.get("severity"),
                "classes": f.get("classes"),
                "files": f.get("files"),
                "score": f.get("score"),
                "message": f.get("message"),
                "introduced_by": f.get("introduced_by") or [],
                "decision": ds[-1] if ds else None,
                "decisions": ds,
            }
        )
    return listing


def _add_ledger(backend: Backend, target: ReviewTarget, decided: dict[str, list[dict]]) -> None:
    """Decisions on the same content made in reviews of other commits (a deferred label issue
    stays in the queue; the ledger says who deferred it)."""
    data = target.data
    per_file = {
        fid: f
        for fid, f in target.findings.items()
        if f.get("check") not in CLASS_LEVEL and fid not in decided and f.get("files")
    }
    paths = {p for f in per_file.values() for p in f["files"]}
    if not paths:
        return
    hashes = content_hashes(backend, data["repo"], data["commit"], paths)
    ledger = load_ledger(backend, set(hashes.values()))
    if not ledger:
        return
    for fid, f in per_file.items():
        for p in f["files"]:
            for e in ledger.get(hashes.get(p, ""), ()):
                if e.check == f.get("check"):
                    decided.setdefault(fid, []).append(
                        {
                            "finding": fid,
                            "file": p,
                            "action": e.action,
                            "by": e.by,
                            "time": e.time,
                            "review": e.review,
                            "earlier": True,
                        }
                    )
