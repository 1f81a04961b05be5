"""Blame: which data commit made a model (or an audit) go wrong, and with which files.

From a model commit (Train, Convert), an audit commit or a data commit, ``blame`` finds the
audits behind it, reads their ``/audit.json`` and groups every finding under the data commits
that introduced its files: the one-command answer to the seed's question, "which commit made
the phone call tulips orchids?". A Convert commit the gate blocked is blamed through the audit
that blocked it.

Findings carry ``introduced_by`` (BRIEF.md); where it is missing or names several commits, the
file history decides (``Backend.introduced_by`` on the audited data commit).

Imports point one way: ``auditor`` imports ``pipelines``, never the CLI.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from pipelines.backend import Backend
from pipelines.errors import CommitNotFound, TulipError
from pipelines.info import CommitInfo, RepoInfo, iso
from pipelines.layout import (
    AUDIT_FILE,
    GATE_BLOCKED,
    MODEL_FILES,
    REVIEW_AUDIT_KEY,
    REVIEW_BY_KEY,
    REVIEW_KEY,
    REVIEW_RECORD_KEY,
    MalformedDocument,
    read_json,
    stat_optional,
)
from pipelines.refs import Ref, parse_ref

SEVERITY_ORDER = {"fail": 0, "warn": 1, "info": 2}


@dataclass
class BlamedFinding:
    """One finding, as far as one data commit is to blame for it."""

    check: str
    severity: str
    classes: list[str]
    message: str
    files: list[str]  # the finding's files this commit added or changed
    total_files: int  # the finding's files in all

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class BlamedCommit:
    repo: str
    id: str
    branch: str | None
    started: float | None
    description: str
    files: list[str] = field(default_factory=list)  # every finding file it introduced
    findings: list[BlamedFinding] = field(default_factory=list)

    @property
    def worst(self) -> int:
        return min((SEVERITY_ORDER.get(f.severity, 3) for f in self.findings), default=3)

    def as_dict(self) -> dict:
        return {
            "repo": self.repo,
            "id": self.id,
            "branch": self.branch,
            "started": iso(self.started),
            "description": self.description,
            "files": self.files,
            "findings": [f.as_dict() for f in self.findings],
        }


@dataclass
class AuditSummary:
    repo: str
    commit: str
    verdict: str
    data: dict  # {"repo", "commit"} the audit looked at
    findings: int
    by_check: dict[str, int]
    error: str | None = None  # the Audit job failed: its commit holds no audit of its own

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Fix:
    """A review's fix commit in the history of the data: what was wrong, and who fixed it."""

    review: str
    by: str | None
    audit: str | None  # the audit it reviewed
    commit: dict  # the fix commit: {"repo", "id", "description", "started"}
    original: list[dict]  # the commits that audit blamed: {"repo", "id", "description"}

    def as_dict(self) -> dict:
        return {
            **self.__dict__,
            "commit": {**self.commit, "started": iso(self.commit.get("started"))},
        }


@dataclass
class BlameReport:
    target: dict  # {"repo", "id", "kind": model|audit|data|output, "model_file"}
    built_from: list[dict]  # data commits: {"repo", "id", "description", "started"}
    blocked: str | None  # the gate's message when the target's job was blocked
    audits: list[AuditSummary]
    commits: list[BlamedCommit]  # most severe first, then newest first
    unattributed: list[dict]  # findings (or files) no data commit could be found for
    notes: list[str]
    fixes: list[Fix] = field(default_factory=list)  # reviews that fixed the data, newest first

    @property
    def verdict(self) -> str | None:
        verdicts = [a.verdict for a in self.audits if a.error is None]
        for v in ("fail", "warn", "pass"):
            if v in verdicts:
                return v
        return verdicts[0] if verdicts else None

    def as_dict(self) -> dict:
        return {
            "schema": "tulip.blame/v1",
            "target": self.target,
            "built_from": [{**b, "started": iso(b.get("started"))} for b in self.built_from],
            "blocked": self.blocked,
            "verdict": self.verdict,
            "audits": [a.as_dict() for a in self.audits],
            "commits": [c.as_dict() for c in self.commits],
            "unattributed": self.unattributed,
            "notes": self.notes,
            "fixes": [f.as_dict() for f in self.fixes],
            "summary": self.summary(),
        }

    def summary(self, *, now: float | None = None) -> str:
        """One line that answers "which commit did this?" (and, for data a review fixed,
        which commit the fix repaired)."""
        return self._summary(now) + self._fixed()

    def _fixed(self) -> str:
        if not self.fixes:
            return ""
        f = self.fixes[0]
        was = ", ".join(f"{o['repo']}@{o['id']}" for o in f.original) or "the audited data"
        more = f" (and {len(self.fixes) - 1} earlier fixes)" if len(self.fixes) > 1 else ""
        return (
            f"; fixed by review {f.review[:12]} ({f.by}, of {f.audit}) in "
            f"{f.commit['repo']}@{f.commit['id']}, repairing {was}{more}"
        )

    def _summary(self, now: float | None) -> str:
        t = self.target
        name = f"{t['repo']}@{t['id']}"
        its = "it" if t["kind"] == "audit" else "its audit"
        if t["kind"] == "data":
            head = name
        elif t["kind"] == "audit":
            audited = ", ".join(f"{b['repo']}@{b['id']}" for b in self.built_from) or "no data"
            head = f"{name} audited {audited}"
        else:
            built = ", ".join(f"{b['repo']}@{b['id']}" for b in self.built_from) or "no data"
            head = f"{name} was built from {built}"
        if self.blocked:
            head += "; the gate blocked it"
        real = [a for a in self.audits if a.error is None]
        if not real:
            failed = [a for a in self.audits if a.error]
            if failed:
                a = failed[0]
                return f"{head}; its audit {a.repo}@{a.commit} did not finish: {a.error}"
            return f"{head}; no audit of it was found"
        verdict = self.verdict
        audited = ", ".join(f"{a.repo}@{a.commit}" for a in real)
        if not self.commits and not self.unattributed:
            return f"{head}; {its} ({audited}) {_verb(verdict)} with no findings to blame"
        worst = self.commits[0] if self.commits else None
        if worst is None:
            checks = ", ".join(sorted({u.get("check", "?") for u in self.unattributed}))
            return f"{head}; {its} {_verb(verdict)}: {checks}; no data commit to blame"
        top = sorted(worst.findings, key=lambda f: SEVERITY_ORDER.get(f.severity, 3))
        what = "; ".join(f"{f.check} {_classes(f.check, f.classes)}".strip() for f in top[:2])
        when = _ago(worst.started, now)
        desc = f", {worst.description!r}" if worst.description else ""
        more = f" (and {len(self.commits) - 1} more commits)" if len(self.commits) > 1 else ""
        return (
            f"{head}; {its} {_verb(verdict)}: {what}; introduced by "
            f"{worst.repo}@{worst.id} ({when}{desc}): {summarize_paths(worst.files)}{more}"
        )

    def render(self, *, now: float | None = None, max_files: int = 5) -> str:
        """The summary, then the audits, the commits with their findings, and what is left."""
        lines = [self.summary(now=now), ""]
        if self.blocked:
            lines.append(f"Gate: {self.blocked}")
        for a in self.audits:
            if a.error:
                lines.append(f"Audit {a.repo}@{a.commit}: job failed: {a.error}")
            else:
                lines.append(
                    f"Audit {a.repo}@{a.commit}: {a.verdict}, {a.findings} findings, of "
                    f"{a.data.get('repo')}@{a.data.get('commit')}"
                )
        for c in self.commits:
            lines.append("")
            desc = f"  {c.description!r}" if c.description else ""
            lines.append(f"{c.repo}@{c.id}  {_ago(c.started, now)}{desc}")
            for f in c.findings:
                cls = _classes(f.check, f.classes)
                lines.append(
                    f"  {f.severity:<5} {f.check} {cls}  {len(f.files)} of {f.total_files} files"
                    + (f": {f.message}" if f.message else "")
                )
                for p in f.files[:max_files]:
                    lines.append(f"        {p}")
                if len(f.files) > max_files:
                    lines.append(f"        … and {len(f.files) - max_files} more")
        if self.unattributed:
            lines.append("")
            lines.append("Not attributed to a data commit:")
            for u in self.unattributed:
                lines.append(f"  {u.get('check')}: {u.get('why')}")
        for f in self.fixes:
            lines.append("")
            desc = f"  {f.commit.get('description')!r}" if f.commit.get("description") else ""
            lines.append(
                f"Fixed in {f.commit['repo']}@{f.commit['id']}  {_ago(f.commit.get('started'), now)}"
                f"{desc}"
            )
            lines.append(f"  review {f.review} by {f.by}, of {f.audit}")
            for o in f.original:
                odesc = f"  {o['description']!r}" if o.get("description") else ""
                lines.append(f"  repairs {o['repo']}@{o['id']}{odesc}")
        for n in self.notes:
            lines.append(f"Note: {n}")
        return "\n".join(lines).rstrip() + "\n"


def _verb(verdict: str | None) -> str:
    return {"fail": "failed", "warn": "warned", "pass": "passed"}.get(verdict or "", str(verdict))


def _classes(check: str, classes: list[str]) -> str:
    if len(classes) == 2 and check in ("lookalike_class", "label_issue"):
        return f"{classes[0]}→{classes[1]}"
    if len(classes) == 2 and check in ("class_overlap", "cross_class_duplicate"):
        return f"{classes[0]}↔{classes[1]}"
    return ", ".join(classes)


def _ago(ts: float | None, now: float | None) -> str:
    if ts is None:
        return "unknown time"
    delta = (now if now is not None else time.time()) - ts
    for unit, secs in (("day", 86400), ("hour", 3600), ("min", 60)):
        if delta >= secs:
            n = int(delta // secs)
            return f"{n} {unit}{'s' if n != 1 and unit != 'min' else ''} ago"
    return "just now"


def summarize_paths(paths: Iterable[str], *, limit: int = 4) -> str:
    """``/orchids/ (60 files)`` for a folder's worth, single paths as themselves."""
    by_dir: dict[str, list[str]] = {}
    for p in sorted(paths):
        by_dir.setdefault(p.rsplit("/", 1)[0] + "/", []).append(p)
    parts = [f"{d} ({len(ps)} files)" if len(ps) > 1 else ps[0] for d, ps in sorted(by_dir.items())]
    if not parts:
        return "no files"
    if len(parts) > limit:
        return ", ".join(parts[:limit]) + f", and {len(parts) - limit} more folders"
    return ", ".join(parts)


class _Repos:
    """Repo kinds, looked up once each."""

    def __init__(self, backend: Backend):
        self.backend = backend
        self._info: dict[str, RepoInfo | None] = {}

    def info(self, name: str) -> RepoInfo | None:
        if name not in self._info:
            try:
                self._info[name] = self.backend.inspect_repo(name)
            except TulipError:
                self._info[name] = None
        return self._info[name]

    def is_data(self, name: str) -> bool:
        r = self.info(name)
        return r is not None and r.type != "spec" and not r.pipeline


def _has_file(backend: Backend, c: CommitInfo, path: str) -> bool:
    """Does the finished commit ``c`` hold a file at ``path`` (a running one holds nothing yet)?"""
    return c.finished is not None and stat_optional(backend, c.repo, c.id, path) is not None


def blame(
    backend: Backend,
    ref: str | Ref,
    *,
    audit_file: str = AUDIT_FILE,
    model_files: Iterable[str] = MODEL_FILES,
) -> BlameReport:
    """Blame the findings behind ``ref`` (a model, audit or data commit) on data commits."""
    commit = backend.resolve(parse_ref(ref) if isinstance(ref, str) else ref)
    repos = _Repos(backend)
    notes: list[str] = []
    info = repos.info(commit.repo)
    model_file = next((p for p in model_files if _has_file(backend, commit, p)), None)
    if repos.is_data(commit.repo):
        kind = "data"
    elif commit.error is None and _has_file(backend, commit, audit_file):
        kind = "audit"
    elif model_file or (commit.error and GATE_BLOCKED in commit.error):
        kind = "model"
    else:
        kind = "output" if info is not None and info.type != "spec" else "spec"
    blocked = None
    if commit.error and GATE_BLOCKED in commit.error:
        blocked = commit.error[commit.error.index(GATE_BLOCKED) :]
    elif commit.error:
        notes.append(f"{commit.repo}@{commit.id} failed: {commit.error}")
    if commit.error and model_file:
        notes.append(
            f"{model_file} in {commit.repo}@{commit.id} is carried over from its parent "
            f"{commit.parent}; this commit produced no model of its own"
        )

    provenance = [] if kind == "data" else backend.provenance(commit)
    built_from: list[dict] = []
    if kind == "data":
        built_from.append(_commit_dict(commit))
    for ref_ in provenance:
        if repos.is_data(ref_.repo):
            built_from.append(_commit_dict(backend.inspect_commit(ref_.repo, ref_.id)))

    audit_commits = _find_audits(backend, commit, kind, provenance, built_from, audit_file, repos)
    if not audit_commits:
        data = ", ".join(f"{b['repo']}@{b['id']}" for b in built_from) or "its data"
        notes.append(f"no audit of {data} found; run the Audit pipeline or `tulip audit {data}`")

    audits: list[AuditSummary] = []
    groups: dict[tuple[str, str], BlamedCommit] = {}
    unattributed: list[dict] = []
    for ac in audit_commits:
        if ac.error:
            audits.append(AuditSummary(ac.repo, ac.id, "error", {}, 0, {}, error=ac.error))
            continue
        try:
            doc = read_json(backend, ac.repo, ac.id, audit_file)
        except MalformedDocument as e:
            audits.append(AuditSummary(ac.repo, ac.id, "unreadable", {}, 0, {}, error=str(e)))
            continue
        if doc is None:
            audits.append(
                AuditSummary(ac.repo, ac.id, "unreadable", {}, 0, {}, error=f"no {audit_file}")
            )
            continue
        findings = [f for f in doc.get("findings") or [] if isinstance(f, dict)]
        data = doc.get("data") if isinstance(doc.get("data"), dict) else {}
        by_check: dict[str, int] = {}
        for f in findings:
            by_check[str(f.get("check"))] = by_check.get(str(f.get("check")), 0) + 1
        audits.append(
            AuditSummary(
                ac.repo,
                ac.id,
                str(doc.get("verdict")),
                {"repo": data.get("repo"), "commit": data.get("commit")},
                len(findings),
                dict(sorted(by_check.items())),
            )
        )
        _attribute(backend, findings, data, groups, unattributed)

    commits = sorted(groups.values(), key=lambda c: (c.worst, -(c.started or 0), c.id))
    for c in commits:
        c.files = sorted(set(c.files))
        c.findings.sort(key=lambda f: (SEVERITY_ORDER.get(f.severity, 3), f.check))
    target = {"repo": commit.repo, "id": commit.id, "kind": kind, "model_file": model_file}
    fixes = _fixes(backend, built_from)
    return BlameReport(target, built_from, blocked, audits, commits, unattributed, notes, fixes)


def _fixes(backend: Backend, built_from: list[dict]) -> list[Fix]:
    """The reviews' fix commits among the data commits behind the target and their ancestors,
    newest first, with the commits each one's audit blamed (from the review's record)."""
    found: list[Fix] = []
    seen: set[tuple[str, str]] = set()
    for b in built_from:
        cid: str | None = b["id"]
        while cid is not None and (b["repo"], cid) not in seen:
            seen.add((b["repo"], cid))
            c = backend.inspect_commit(b["repo"], cid)
            if REVIEW_KEY in c.metadata:
                found.append(_fix(backend, c))
            cid = c.parent
    return sorted(found, key=lambda f: -(f.commit.get("started") or 0))


def _fix(backend: Backend, c: CommitInfo) -> Fix:
    original: list[dict] = []
    record = _record(backend, c.metadata.get(REVIEW_RECORD_KEY))
    for o in (record or {}).get("introduced_by") or []:
        try:
            oc = backend.inspect_commit(o["repo"], o["commit"])
            original.append({"repo": oc.repo, "id": oc.id, "description": oc.description})
        except (TulipError, KeyError, TypeError):
            continue
    return Fix(
        review=c.metadata[REVIEW_KEY],
        by=c.metadata.get(REVIEW_BY_KEY),
        audit=c.metadata.get(REVIEW_AUDIT_KEY),
        commit={"repo": c.repo, "id": c.id, "description": c.description, "started": c.started},
        original=original,
    )


def _record(backend: Backend, pointer: str | None) -> dict | None:
    """The review record a fix commit's metadata points at (``repo@commit:/path``)."""
    if not pointer or ":" not in pointer or "@" not in pointer:
        return None
    where, path = pointer.split(":", 1)
    repo, commit = where.split("@", 1)
    try:
        return read_json(backend, repo, commit, path)
    except (TulipError, MalformedDocument):
        return None


def _commit_dict(c: CommitInfo) -> dict:
    return {"repo": c.repo, "id": c.id, "description": c.description, "started": c.started}


def _find_audits(
    backend: Backend,
    commit: CommitInfo,
    kind: str,
    provenance: list,
    built_from: list[dict],
    audit_file: str,
    repos: _Repos,
) -> list[CommitInfo]:
    """The audits that speak for ``commit``: itself, those in its provenance, those of its
    commit set, else the newest audit of the data it was built from."""
    if kind == "audit":
        return [commit]

    def audits_among(commits: Iterable[CommitInfo]) -> list[CommitInfo]:
        found = []
        for c in commits:
            if c.repo == commit.repo and c.id == commit.id:
                continue
            info = repos.info(c.repo)
            if info is None or info.type == "spec" or not info.pipeline:
                continue
            if c.finished is None:
                continue
            if c.error:
                parent_has = _has_file(backend, c, audit_file)
                if parent_has or _is_audit_repo(backend, c.repo, audit_file):
                    found.append(c)  # a failed Audit job: reported, not read
                continue
            if _has_file(backend, c, audit_file):
                found.append(c)
        return found

    if provenance:
        inputs = [backend.inspect_commit(r.repo, r.id) for r in provenance]
        found = audits_among(inputs)
        if found:
            return found
    try:
        found = audits_among(backend.commit_set(commit.id))
    except CommitNotFound:
        found = []
    if found:
        return found
    # The audit of the same data, made in another commit set (the data under an older ID).
    for b in built_from:
        candidates = []
        for r in backend.subvenance(b["repo"], b["id"]):
            c = backend.inspect_commit(r.repo, r.id)
            for a in audits_among([c]):
                if a.error is None and _audits_data(backend, a, audit_file, b["id"]):
                    candidates.append(a)
        if candidates:
            return [max(candidates, key=lambda c: c.started)]
    return []


def _is_audit_repo(backend: Backend, repo: str, audit_file: str) -> bool:
    """Does this repo's master head hold an audit (so a failed commit of it was an audit)?"""
    try:
        head = backend.inspect_branch(repo, "master").head
        return head is not None and _has_file(
            backend, backend.inspect_commit(repo, head), audit_file
        )
    except TulipError:
        return False


def _audits_data(backend: Backend, audit: CommitInfo, audit_file: str, data_commit: str) -> bool:
    try:
        doc = read_json(backend, audit.repo, audit.id, audit_file)
    except MalformedDocument:
        return False
    data = doc.get("data") if doc is not None else None
    return isinstance(data, dict) and data.get("commit") == data_commit


def _attribute(
    backend: Backend,
    findings: list[dict],
    data: dict,
    groups: dict[tuple[str, str], BlamedCommit],
    unattributed: list[dict],
) -> None:
    """Group findings under the commits that introduced their files."""
    data_repo, data_commit = data.get("repo"), data.get("commit")
    need: set[str] = set()
    for f in findings:
        files = [p for p in f.get("files") or [] if isinstance(p, str)]
        if files and len(_intro(f)) != 1:
            need.update(files)
    by_file: dict[str, str] = {}
    if need and data_repo and data_commit:
        try:
            by_file = backend.introduced_by(data_repo, data_commit, sorted(need))
        except TulipError as e:
            unattributed.append(
                {"check": "*", "why": f"cannot read the history of {data_repo}@{data_commit}: {e}"}
            )
    for f in findings:
        files = sorted({p for p in f.get("files") or [] if isinstance(p, str)})
        intro = _intro(f)
        assigned: dict[tuple[str, str], list[str]] = {}
        if files and len(intro) == 1:
            assigned[intro[0]] = files
        elif files:
            missing = []
            for p in files:
                cid = by_file.get(p)
                if cid is None or not data_repo:
                    missing.append(p)
                else:
                    assigned.setdefault((data_repo, cid), []).append(p)
            if missing:
                unattributed.append(
                    {
                        "check": f.get("check"),
                        "files": missing,
                        "why": f"{len(missing)} files are not in "
                        f"{data_repo}@{data_commit}, so no commit introduced them there",
                    }
                )
        else:
            for key in intro:
                assigned[key] = []
            if not intro:
                unattributed.append(
                    {"check": f.get("check"), "why": "the finding names no files and no commits"}
                )
        for (repo, cid), paths in assigned.items():
            key = (repo, cid)
            if key not in groups:
                try:
                    c = backend.inspect_commit(repo, cid)
                    groups[key] = BlamedCommit(repo, cid, c.branch, c.started, c.description)
                except TulipError:
                    groups[key] = BlamedCommit(repo, cid, None, None, "(commit no longer exists)")
            g = groups[key]
            g.files.extend(paths)
            g.findings.append(
                BlamedFinding(
                    check=str(f.get("check")),
                    severity=str(f.get("severity")),
                    classes=[str(c) for c in f.get("classes") or []],
                    message=str(f.get("message") or ""),
                    files=sorted(paths),
                    total_files=len(files),
                )
            )


def _intro(finding: dict) -> list[tuple[str, str]]:
    out = []
    for e in finding.get("introduced_by") or []:
        if isinstance(e, dict) and e.get("repo") and e.get("commit"):
            key = (str(e["repo"]), str(e["commit"]))
            if key not in out:
                out.append(key)
    return out
