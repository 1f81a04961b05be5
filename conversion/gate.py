"""The gate: may a model built from this data ship? Answered from the Audit stage's verdict.

Convert reads ``<audit dir>/audit.json`` (schema ``tulip.audit/v1``, see BRIEF.md) before it
does anything else. A ``fail`` verdict, a missing or unreadable ``audit.json``, or an audit of
a different data commit than the one being converted blocks the model: ``GateBlocked`` is
raised with a message whose first words are ``gate blocked:``, which the stage prints as its
last line. ``pass`` and ``warn`` let it through; a warn is recorded in ``conversion.json``.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from pipelines.errors import GateBlocked

AUDIT_SCHEMA = "tulip.audit/v1"
AUDIT_FILE = "audit.json"
TOP_CHECKS = 3


@dataclass(frozen=True)
class GateDecision:
    verdict: str
    commit: str | None
    repo: str | None
    findings: int
    checks: list[str]

    def to_dict(self) -> dict:
        return {
            "verdict": self.verdict,
            "data": {"repo": self.repo, "commit": self.commit},
            "findings": self.findings,
            "checks": self.checks,
        }


def top_checks(findings: list[dict], *, limit: int = TOP_CHECKS) -> list[str]:
    """Check names, most frequent first (ties by name), at most ``limit``."""
    counts = Counter(str(f.get("check", "unknown")) for f in findings)
    return [name for name, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))][:limit]


def decide(
    audit: dict, *, data_commit: str | None = None, source: str = AUDIT_FILE
) -> GateDecision:
    """Raise ``GateBlocked`` unless ``audit`` lets the model through; return what it said."""
    if not isinstance(audit, dict) or audit.get("schema") != AUDIT_SCHEMA:
        schema = audit.get("schema") if isinstance(audit, dict) else type(audit).__name__
        raise GateBlocked(
            f"gate blocked: {source} is not a {AUDIT_SCHEMA} document (schema {schema!r}); "
            "re-run the Audit pipeline"
        )
    data = audit.get("data") or {}
    commit = data.get("commit")
    repo = data.get("repo")
    verdict = audit.get("verdict")
    findings = [f for f in audit.get("findings") or [] if isinstance(f, dict)]
    if verdict not in ("pass", "warn", "fail"):
        raise GateBlocked(
            f"gate blocked: audit {commit} has verdict {verdict!r}, expected pass, warn or fail"
        )
    if verdict == "fail":
        failing = [f for f in findings if f.get("severity") == "fail"] or findings
        names = top_checks(failing)
        raise GateBlocked(
            f"gate blocked: audit {commit} failed: {len(failing)} findings ({', '.join(names)})"
        )
    if data_commit and commit and data_commit != commit:
        raise GateBlocked(
            f"gate blocked: audit {commit} is of {repo or 'the data'} commit {commit}, but this "
            f"model comes from commit {data_commit}; wait for the Audit of {data_commit}"
        )
    return GateDecision(verdict, commit, repo, len(findings), top_checks(findings))


def check_gate(audit_dir: Path, *, data_commit: str | None = None) -> GateDecision:
    """Read ``audit_dir/audit.json`` (or ``audit_dir`` itself if it is the file) and decide."""
    path = audit_dir if audit_dir.is_file() else audit_dir / AUDIT_FILE
    if not path.is_file():
        raise GateBlocked(f"gate blocked: no {AUDIT_FILE} in {audit_dir}")
    try:
        audit = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise GateBlocked(f"gate blocked: {path} cannot be read as JSON ({e})") from e
    return decide(audit, data_commit=data_commit, source=str(path))
