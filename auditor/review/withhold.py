"""What a later audit does with the ledger: per-file findings whose files were all accepted, with
the same content and the same label, are withheld (not re-flagged), and the document says so.

Class-level findings (``auditor.findings.CLASS_LEVEL``) are never withheld: a class that gains
files is a new question, and its finding a new id. Pure: the document, each file's content
hash and the ledger's entries in, the new document and the withheld findings out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from auditor.findings import CLASS_LEVEL, SEVERITIES, id_of, verdict
from pipelines.layout import REVIEWS_REPO, label_of

from .ledger import LedgerEntry


def accepted_entry(
    path: str, check: str, sha256: str | None, ledger: Mapping[str, Sequence[LedgerEntry]]
) -> LedgerEntry | None:
    """The accept that covers this file for this check: same content, same label."""
    if not sha256:
        return None
    for e in ledger.get(sha256, ()):
        if e.action == "accept" and e.check == check and e.label == label_of(path):
            return e
    return None


def withhold_accepted(
    document: Mapping[str, Any],
    *,
    sha256_of: Mapping[str, str],
    ledger: Mapping[str, Sequence[LedgerEntry]],
) -> tuple[dict[str, Any], set[str]]:
    """The document without the findings a review accepted, its verdict and counts redone,
    and ``review`` saying what was withheld; plus the ids withheld."""
    kept, withheld = [], []
    for f in document.get("findings") or []:
        check = str(f.get("check"))
        files = [str(p) for p in f.get("files") or []]
        entries = (
            [accepted_entry(p, check, sha256_of.get(p), ledger) for p in files]
            if files and check not in CLASS_LEVEL
            else [None]
        )
        if all(e is not None for e in entries):
            withheld.append(
                {
                    "id": id_of(f),
                    "check": check,
                    "severity": f.get("severity"),
                    "classes": f.get("classes"),
                    "files": files,
                    "accepted": sorted({(e.review, e.by) for e in entries}),
                }
            )
        else:
            kept.append(f)
    doc = dict(document)
    n = len(withheld)
    doc["review"] = {
        "ledger": REVIEWS_REPO,
        "not_reflagged": n,
        "files": sum(len(w["files"]) for w in withheld),
        "withheld": [
            {**w, "accepted": [{"review": r, "by": b} for r, b in w["accepted"]]} for w in withheld
        ],
        "message": f"{n} accepted by review, not re-flagged" if n else None,
    }
    if not withheld:
        return doc, set()
    doc["findings"] = kept
    doc["verdict"] = verdict(_Severity(f.get("severity")) for f in kept)
    summary = dict(doc.get("summary") or {})
    summary["findings"] = dict(sorted(Counter(str(f.get("check")) for f in kept).items()))
    summary["severities"] = {s: sum(f.get("severity") == s for f in kept) for s in SEVERITIES}
    doc["summary"] = summary
    return doc, {w["id"] for w in withheld}


class _Severity:
    """Enough of a Finding for ``auditor.findings.verdict``."""

    def __init__(self, severity: Any):
        self.severity = severity
