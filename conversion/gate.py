"""The gate: may a model built from this data ship? Answered from the Audit stage's verdict.

There is one gate, and both places a model can leave through call it: the Convert stage
(``check_gate`` on ``<audit dir>/audit.json``, before it does anything else) and the mobile
export (``mobile.release``, on the audit among a Convert commit's inputs).

``decide`` blocks the model, raising ``GateBlocked`` with a message whose first words are
``gate blocked:`` (the Convert stage prints it as its last line), when the audit

1. is not a ``tulip.audit/v1`` document (schema, and a verdict of pass, warn or fail);
2. failed;
3. is of another data commit than the ones the model was built from.

``pass`` and ``warn`` let it through; a warn is recorded in ``conversion.json``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from pipelines.errors import GateBlocked
from pipelines.layout import (
    AUDIT_FILE,
    AUDIT_SCHEMA,
    GATE_BLOCKED,
    MalformedDocument,
    mounted,
    parse_json,
)

VERDICTS = ("pass", "warn", "fail")
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


def _why(findings: list[dict]) -> str:
    """The top checks, each with the classes of its first finding (``lookalike_class
    orchids/tulips``), so the refusal says what is wrong without opening the report."""
    parts = []
    for name in top_checks(findings):
        first = next(f for f in findings if str(f.get("check", "unknown")) == name)
        classes = "/".join(str(c) for c in first.get("classes") or [])
        parts.append(f"{name} {classes}".strip())
    return ", ".join(parts)


def decide(
    audit: dict,
    *,
    data_commit: str | None = None,
    data_commits: Collection[str] = (),
    source: str = AUDIT_FILE,
) -> GateDecision:
    """Raise ``GateBlocked`` unless ``audit`` lets the model through; return what it said.

    ``data_commit`` (or ``data_commits``, when a model has several: the data and a reference
    gallery) are the data commits the model was built from; the audit must be of one of them.
    """
    if not isinstance(audit, dict) or audit.get("schema") != AUDIT_SCHEMA:
        schema = audit.get("schema") if isinstance(audit, dict) else type(audit).__name__
        raise GateBlocked(
            f"{GATE_BLOCKED}: {source} is not a {AUDIT_SCHEMA} document (schema {schema!r}); "
            "re-run the Audit pipeline"
        )
    data = audit.get("data") if isinstance(audit.get("data"), dict) else {}
    commit = data.get("commit")
    repo = data.get("repo")
    verdict = audit.get("verdict")
    findings = [f for f in audit.get("findings") or [] if isinstance(f, dict)]
    if verdict not in VERDICTS:
        raise GateBlocked(
            f"{GATE_BLOCKED}: audit {commit} has verdict {verdict!r}, expected pass, warn or fail"
        )
    if verdict == "fail":
        failing = [f for f in findings if f.get("severity") == "fail"] or findings
        raise GateBlocked(
            f"{GATE_BLOCKED}: audit {commit} failed: {len(failing)} findings ({_why(failing)})"
        )
    wanted = set(data_commits) | ({data_commit} if data_commit else set())
    if wanted and commit and commit not in wanted:
        built = ", ".join(sorted(wanted))
        raise GateBlocked(
            f"{GATE_BLOCKED}: audit {commit} is of {repo or 'the data'} commit {commit}, but this "
            f"model comes from commit {built}; wait for the Audit of {built}"
        )
    return GateDecision(verdict, commit, repo, len(findings), top_checks(findings))


def check_gate(audit_dir: Path, *, data_commit: str | None = None) -> GateDecision:
    """Read ``audit_dir/audit.json`` (or ``audit_dir`` itself if it is the file) and decide."""
    path = audit_dir if audit_dir.is_file() else mounted(audit_dir, AUDIT_FILE)
    if not path.is_file():
        raise GateBlocked(f"{GATE_BLOCKED}: no {path.name} in {audit_dir}")
    try:
        audit = parse_json(path.read_bytes(), source=str(path))
    except (OSError, MalformedDocument) as e:
        raise GateBlocked(f"{GATE_BLOCKED}: {path} cannot be read as JSON ({e})") from e
    return decide(audit, data_commit=data_commit, source=str(path))
