"""Audit documents (``tulip.audit/v1``) for tests of whatever reads them: the gate, the stages,
the export, the reports."""

from __future__ import annotations

from pipelines.layout import AUDIT_SCHEMA

FAILING = [
    {"check": "lookalike_class", "severity": "fail"},
    {"check": "class_overlap", "severity": "fail"},
    {"check": "class_overlap", "severity": "fail"},
    {"check": "label_issue", "severity": "warn"},
]


def audit(verdict: str, findings=(), commit: str = "c0ffee", repo: str = "flower_photos") -> dict:
    return {
        "schema": AUDIT_SCHEMA,
        "verdict": verdict,
        "data": {"repo": repo, "branch": "master", "commit": commit},
        "reference": None,
        "summary": {"images": 10, "classes": {}},
        "findings": list(findings),
    }
