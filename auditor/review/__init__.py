"""The review loop: decisions on an audit's findings, applied as one fix commit, remembered in a
versioned ledger keyed by content, and exchanged with Label Studio or a spreadsheet.

The use cases, one function each (``tulip review`` and the report server call them):

* ``list_review(backend, audit_ref)``: the findings, with ids and the decisions made so far;
* ``apply_review(backend, audit_ref, decisions, *, by, dry_run, ...)``: one USER fix commit
  on the audited branch, and one ledger commit;
* ``export_review(backend, audit_ref, *, format, ...)`` and ``import_review(raw, *, format)``:
  Label Studio tasks (with predictions) or CSV rows out, decisions back in.

Imports point one way: ``auditor.review`` imports ``auditor.findings`` and ``pipelines``;
``auditor.run`` reads the ledger through ``ledger`` and ``withhold``. Names resolve on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "list_review": "auditor.review.listing",
    "ReviewListing": "auditor.review.listing",
    "apply_review": "auditor.review.apply",
    "ReviewResult": "auditor.review.apply",
    "default_reviewer": "auditor.review.apply",
    "export_review": "auditor.review.interchange",
    "import_review": "auditor.review.interchange",
    "Decision": "auditor.review.decisions",
    "parse_decisions": "auditor.review.decisions",
    "InvalidDecisions": "auditor.review.decisions",
    "UnknownFinding": "auditor.review.decisions",
    "UnknownClass": "auditor.review.decisions",
    "ConflictingDecisions": "auditor.review.decisions",
    "list_reviews": "auditor.review.ledger",
    "reviews_of": "auditor.review.ledger",
    "load_ledger": "auditor.review.ledger",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'auditor.review' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
