"""What an audit found, and the ``tulip.audit/v1`` document that carries it.

A :class:`Finding` is one problem: which check saw it, how bad it is, the classes and files it
is about, and a score whose meaning each check documents (see ``SCORES``). ``introduced_by``
stays empty here: blame (the lineage code) fills it from the files, through
:func:`with_introduced_by`, so that the checks never need a store.

Every finding has a stable ``id`` (:func:`finding_id`): a hash of its check, its classes and
its files, and of nothing that varies between two audits of the same content (scores,
messages, blame). A review decision names a finding by it, so the same problem seen in two
audits of the same data is one finding; a class-level finding whose class gains files is a
new one, and needs a new decision.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from pipelines.layout import AUDIT_SCHEMA

SCHEMA = AUDIT_SCHEMA
SEVERITIES = ("info", "warn", "fail")

CHECKS = (
    "unreadable_file",
    "duplicate",
    "cross_class_duplicate",
    "split_leakage",
    "class_overlap",
    "lookalike_class",
    "new_label",
    "label_issue",
    "class_imbalance",
    "drift",
    "batch_contamination",
)

#: checks whose findings are about a class as a whole, not about single files: a review's
#: accept never withholds them from a later audit (new files need a new decision)
CLASS_LEVEL = frozenset(
    {"class_overlap", "lookalike_class", "new_label", "class_imbalance", "drift"}
    | {"batch_contamination"}
)

# What ``Finding.score`` means, per check. Reports show this next to the number.
SCORES = {
    "unreadable_file": "always 1.0",
    "duplicate": "cosine similarity of the copies (1.0 for byte-identical files)",
    "cross_class_duplicate": "cosine similarity of the copies (1.0 for byte-identical files)",
    "split_leakage": "cosine similarity of the copies (1.0 for byte-identical files)",
    "class_overlap": "overlap in [0,1]: 1 = a classifier cannot tell the two classes apart "
    "(cross-validated AUC 0.5), 0 = perfectly separable (AUC 1); overlap = 2*(1-AUC)",
    "lookalike_class": "overlap in [0,1] of the data label with the reference label it looks like",
    "new_label": "novelty in [0,1]: 1 - the largest overlap with any reference label",
    "label_issue": "1 - the out-of-sample probability of the given label (higher = more suspect)",
    "class_imbalance": "1 - smallest/largest class size (or 1 - size/min_images for a tiny class)",
    "batch_contamination": "share in [0,1] of a commit's images of a class that belong to another "
    "class, corrected for the class's own look-elsewhere rate (~0 for more of the same kind)",
    "drift": "centroid shift of the class, squared, as a fraction of its within-class variance "
    "(bias-corrected: ~0 for more photos of the same kind)",
}


#: hex digits of a finding id (64 bits: no collision among a million findings in practice)
ID_LENGTH = 16


def finding_id(check: str, classes: Sequence[str], files: Iterable[str]) -> str:
    """The stable id of a finding: a hash of the check, the classes (in order: a label issue's
    ``[given, suggested]`` differs from ``[suggested, given]``) and the set of files."""
    key = json.dumps([check, list(classes), sorted(set(files))], separators=(",", ":"))
    return hashlib.sha256(key.encode()).hexdigest()[:ID_LENGTH]


def id_of(finding: Mapping[str, Any]) -> str:
    """The id of a finding of an audit document; computed for documents written before
    findings carried one, so that old audits can be reviewed too."""
    given = finding.get("id")
    if isinstance(given, str) and given:
        return given
    return finding_id(
        str(finding.get("check")),
        [str(c) for c in finding.get("classes") or []],
        [str(p) for p in finding.get("files") or []],
    )


@dataclass(frozen=True)
class Finding:
    """One problem found by one check."""

    check: str
    severity: str
    classes: list[str]
    score: float
    files: list[str]
    message: str
    introduced_by: list[dict] = field(default_factory=list)
    details: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")

    @property
    def id(self) -> str:
        return finding_id(self.check, self.classes, self.files)

    def to_dict(self) -> dict[str, Any]:
        d = {"id": self.id, **asdict(self)}
        d["score"] = round(float(self.score), 4)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Finding:
        return cls(
            check=d["check"],
            severity=d["severity"],
            classes=list(d["classes"]),
            score=float(d["score"]),
            files=list(d["files"]),
            message=d["message"],
            introduced_by=[dict(c) for c in d.get("introduced_by", [])],
            details=dict(d.get("details", {})),
        )


def verdict(findings: Iterable[Finding]) -> str:
    """Any fail finding fails the audit; else any warn warns; else it passes (info is free)."""
    severities = {f.severity for f in findings}
    if "fail" in severities:
        return "fail"
    if "warn" in severities:
        return "warn"
    return "pass"


def with_introduced_by(
    findings: Iterable[Finding], commits_of: Callable[[str], Iterable[Mapping[str, str]]]
) -> list[Finding]:
    """The findings with ``introduced_by`` filled: the union, in first-seen order, of
    ``commits_of(path)`` ({"repo", "commit"} dicts) over each finding's files. Blame calls this."""
    out = []
    for f in findings:
        seen: dict[tuple[str, str], dict] = {}
        for path in f.files:
            for c in commits_of(path):
                key = (c["repo"], c["commit"])
                seen.setdefault(key, {"repo": c["repo"], "commit": c["commit"]})
        out.append(replace(f, introduced_by=list(seen.values())))
    return out


def audit_document(
    findings: Sequence[Finding],
    *,
    data_ref: Mapping[str, str],
    reference_ref: Mapping[str, str] | None,
    labels: Sequence[str],
    unreadable: int = 0,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``tulip.audit/v1`` document of the brief, plus the extra top-level keys given
    (per-class stats, overlap matrix, projection, timings...). Findings are ordered worst first."""
    order = {s: i for i, s in enumerate(reversed(SEVERITIES))}
    ranked = sorted(findings, key=lambda f: (order[f.severity], f.check, -f.score, f.classes))
    counts = Counter(labels)
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "verdict": verdict(ranked),
        "data": {k: data_ref.get(k) for k in ("repo", "branch", "commit")},
        "reference": None
        if reference_ref is None
        else {k: reference_ref.get(k) for k in ("repo", "commit")},
        "summary": {
            "images": len(labels) + unreadable,
            "readable": len(labels),
            "unreadable": unreadable,
            "classes": {label: counts[label] for label in sorted(counts)},
            "findings": dict(sorted(Counter(f.check for f in ranked).items())),
            "severities": {s: sum(f.severity == s for f in ranked) for s in SEVERITIES},
        },
        "findings": [f.to_dict() for f in ranked],
    }
    for key, value in (extra or {}).items():
        if key in doc:
            raise ValueError(f"extra key {key!r} would overwrite a key of the audit document")
        doc[key] = value
    return doc
