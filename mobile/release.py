"""The store side of the mobile step: which model a Convert commit really holds, may it ship,
where did a model file come from, and would the phones agree with the pipeline on it.

* ``load_model_source(backend, ref)``: a Convert commit (``Convert@master``, say) to the
  model it holds, its labels in output order, its audit, and the data commits behind it.
  A commit whose job failed or was blocked by the gate holds the *carried-over* files of the
  last good commit; the source then names both.
* ``export_release(backend, ref, android=..., ios=...)``: the gate, then the stamped model
  into the apps (``mobile.export``), then an export record in ``tulip_exports``
  (``auditor.lineage.record_export``), where the lineage graph shows it.
* ``identify_file(path, backend=...)``: a ``.tflite`` file's embedded manifest and integrity
  (``mobile.metadata.identify``), cross-checked against a store when there is one.
* ``check_release(backend, ref)``: the device-equivalent check (``mobile.device_check``) on
  the test split Train held out, with the images copied out of the data commit.

The gate, in the order it is checked; ``force`` with a ``reason`` overrides each, and the
override is written into the manifest, the model card and the export record:

1. the commit's job failed or was blocked (``error`` is set): ``ModelNotPublished``;
2. no audit: no commit with ``/audit.json`` among the commit's inputs (``GateBlocked``);
3. the audit's verdict is ``fail`` (``GateBlocked``).

Both errors exit 3 from the CLI. Library code only: nothing here prints or exits.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.backend import Backend
from pipelines.errors import CommitNotFound, FileNotFound, GateBlocked, RepoNotFound, TulipError
from pipelines.info import USER, CommitInfo

from . import metadata
from .errors import ExportTargetError, InvalidCheckInput, LabelsMismatch
from .labels import check_labels, parse_labels

log = logging.getLogger(__name__)

MODEL_FILE = "/optimized_graph.lite"
CONVERSION_FILE = "/conversion.json"
CONVERT_LABELS_FILE = "/labels.txt"
TRAIN_LABELS_FILE = "/retrained_labels.txt"
METRICS_FILE = "/metrics.json"
SPLITS_FILE = "/splits.json"
AUDIT_FILE = "/audit.json"
SPEC_SUFFIX = ".spec"
EXPORT_SCHEMA = "tulip.mobile-export/v1"
CHECK_SCHEMA = "tulip.release-check/v1"
SPLITS = ("test", "validation", "held-out", "all")


class ModelNotPublished(GateBlocked):
    """A Convert commit whose job failed or was blocked: its files are carried over."""

    def __init__(
        self, message: str, *, commit: CommitInfo, last_good: CommitInfo | None = None
    ) -> None:
        super().__init__(message)
        self.commit = commit
        self.last_good = last_good


class NotAModel(TulipError):
    """A commit that holds no ``optimized_graph.lite``: not a Convert output."""


class OverrideWithoutReason(TulipError):
    """``force`` without a reason: an override must say why, for the lineage."""


class ExportNotRecorded(TulipError):
    """The files reached the apps but the export record could not be written."""


def _ref(commit: CommitInfo) -> str:
    return f"{commit.repo}@{commit.id}"


# -- reading the store ------------------------------------------------------------------------


def _file_hash(backend: Backend, repo: str, commit_id: str, path: str) -> str | None:
    try:
        info = backend.inspect_file(repo, commit_id, path)
    except (FileNotFound, CommitNotFound):
        return None
    return info.hash if info.type == "file" else None


def _read(backend: Backend, repo: str, commit_id: str, path: str) -> bytes | None:
    try:
        return backend.get_file(repo, commit_id, path)
    except (FileNotFound, CommitNotFound):
        return None


def _read_json(backend: Backend, repo: str, commit_id: str, path: str) -> dict | None:
    raw = _read(backend, repo, commit_id, path)
    if raw is None:
        return None
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        log.warning("%s@%s:%s is not JSON; ignored", repo, commit_id, path)
        return None
    return doc if isinstance(doc, dict) else None


def _inputs(backend: Backend, commit: CommitInfo) -> list[CommitInfo]:
    """The commit's direct inputs, spec commits left out, each inspected."""
    found = []
    for ref in commit.direct_provenance:
        if ref.repo.endswith(SPEC_SUFFIX):
            continue
        try:
            found.append(backend.inspect_commit(ref.repo, ref.id))
        except (CommitNotFound, RepoNotFound):
            continue
    return found


def _input_with(
    backend: Backend, commit: CommitInfo, path: str, *, prefer: str
) -> CommitInfo | None:
    """The input commit that holds ``path``; the repo named ``prefer`` is tried first."""
    inputs = sorted(_inputs(backend, commit), key=lambda c: (c.repo != prefer, c.repo))
    for candidate in inputs:
        if _file_hash(backend, candidate.repo, candidate.id, path) is not None:
            return candidate
    return None


def data_commits(backend: Backend, commit: CommitInfo) -> tuple[metadata.CommitRef, ...]:
    """The USER commits in the transitive provenance (spec repos left out), by repo name."""
    found: dict[tuple[str, str], metadata.CommitRef] = {}
    for ref in backend.provenance(commit):
        if ref.repo.endswith(SPEC_SUFFIX):
            continue
        try:
            info = backend.inspect_commit(ref.repo, ref.id)
        except (CommitNotFound, RepoNotFound):
            continue
        if info.origin == USER:
            found[(ref.repo, ref.id)] = metadata.CommitRef(ref.repo, ref.id)
    return tuple(found[k] for k in sorted(found))


def last_good_commit(backend: Backend, commit: CommitInfo) -> CommitInfo | None:
    """The commit that really produced the model a failed or blocked commit carries over.

    Walks the parents for a finished commit without ``error`` whose ``optimized_graph.lite``
    has the same content; if none has, the nearest one that holds a model at all.
    """
    carried = _file_hash(backend, commit.repo, commit.id, MODEL_FILE)
    nearest = None
    current = commit
    while current.parent:
        try:
            current = backend.inspect_commit(commit.repo, current.parent)
        except CommitNotFound:
            break
        if current.error or current.finished is None:
            continue
        digest = _file_hash(backend, current.repo, current.id, MODEL_FILE)
        if digest is None:
            continue
        if carried is None or digest == carried:
            return current
        nearest = nearest or current
    return nearest


@dataclass(frozen=True)
class AuditInfo:
    ref: metadata.AuditRef
    document: dict
    commit: CommitInfo

    @property
    def failing(self) -> list[dict]:
        return [
            f
            for f in self.document.get("findings") or []
            if isinstance(f, dict) and f.get("severity") == "fail"
        ]

    def describe_failures(self, *, limit: int = 3) -> str:
        parts = []
        for f in self.failing[:limit]:
            classes = "/".join(str(c) for c in f.get("classes") or [])
            parts.append(f"{f.get('check')} {classes}".strip())
        more = len(self.failing) - limit
        return ", ".join(parts) + (f" and {more} more" if more > 0 else "")


def find_audit(
    backend: Backend, commit: CommitInfo, *, data: Sequence[metadata.CommitRef] = ()
) -> tuple[AuditInfo | None, str | None]:
    """The audit that gates ``commit``: an input commit holding ``/audit.json``.

    Returns the audit, or None with the reason there is none usable: no such input, an audit
    job that failed (its audit.json is carried over from older data), an unreadable document,
    or an audit of another data commit than the model's.
    """
    audit_commit = _input_with(backend, commit, AUDIT_FILE, prefer="Audit")
    if audit_commit is None:
        return None, (
            f"{_ref(commit)} has no audit: none of its inputs holds {AUDIT_FILE} (is the Audit "
            "pipeline one of Convert's inputs?)"
        )
    if audit_commit.error:
        return None, (
            f"the audit job {_ref(audit_commit)} failed ({audit_commit.error}); its "
            f"{AUDIT_FILE} is left over from older data"
        )
    doc = _read_json(backend, audit_commit.repo, audit_commit.id, AUDIT_FILE)
    verdict = doc.get("verdict") if doc else None
    if verdict not in metadata.VERDICTS:
        return None, f"{_ref(audit_commit)}:{AUDIT_FILE} is unreadable or has no verdict"
    audited = (doc.get("data") or {}).get("commit")
    ids = {ref.commit for ref in data}
    if audited and ids and audited not in ids:
        return None, (
            f"{_ref(audit_commit)} audited {doc['data'].get('repo')}@{audited}, which is not "
            f"among the data commits of {_ref(commit)}"
        )
    ref = metadata.AuditRef(verdict, audit_commit.repo, audit_commit.id)
    return AuditInfo(ref, doc, audit_commit), None


@dataclass(frozen=True)
class ModelSource:
    """A published model in the store and everything known about it.

    ``commit`` produced the bytes. ``requested`` is what the reference resolved to: the same
    commit, or a later one whose job failed or was blocked and which carries ``commit``'s
    files over (then ``blocked`` is True).
    """

    requested: CommitInfo
    commit: CommitInfo
    content: bytes
    labels: tuple[str, ...]
    labels_source: str
    data: tuple[metadata.CommitRef, ...]
    audit: AuditInfo | None
    audit_problem: str | None
    train: CommitInfo | None
    blocked_audit: AuditInfo | None
    metrics: dict | None
    conversion: dict | None

    @property
    def blocked(self) -> bool:
        return self.requested.error is not None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def architecture(self) -> str | None:
        arch = (self.metrics or {}).get("architecture")
        return " ".join(str(p) for p in (arch, self.variant) if p) or None

    @property
    def variant(self) -> str | None:
        published = (self.conversion or {}).get("published")
        return published.get("variant") if isinstance(published, dict) else None

    def provenance(self, *, override_reason: str | None = None) -> metadata.Provenance:
        return metadata.Provenance(
            model=metadata.CommitRef(self.commit.repo, self.commit.id),
            data=self.data,
            audit=None if self.audit is None else self.audit.ref,
            architecture=self.architecture,
            override_reason=override_reason,
        )

    def summary(self) -> dict[str, Any]:
        return {
            "requested": {"repo": self.requested.repo, "commit": self.requested.id},
            "model": {"repo": self.commit.repo, "commit": self.commit.id},
            "blocked": (
                {"commit": self.requested.id, "reason": self.requested.error}
                if self.blocked
                else None
            ),
            "sha256": self.sha256,
            "size_bytes": len(self.content),
            "labels": list(self.labels),
            "labels_source": self.labels_source,
            "architecture": self.architecture,
            "data": [r.as_dict() for r in self.data],
            "audit": None if self.audit is None else self.audit.ref.as_dict(),
            "audit_problem": self.audit_problem,
        }


def resolve_commit(backend: Backend, ref: str | CommitInfo) -> CommitInfo:
    commit = ref if isinstance(ref, CommitInfo) else backend.resolve(ref)
    if commit.finished is None:
        raise TulipError(
            f"{_ref(commit)} is still being computed; wait for it with "
            f"`tulip wait commit {_ref(commit)}` and try again"
        )
    return commit


def _labels(
    backend: Backend, commit: CommitInfo, train: CommitInfo | None, conversion: dict | None
) -> tuple[list[str], str]:
    """The labels in output order, from every place that states them; they must agree."""
    found: list[tuple[str, list[str]]] = []
    raw = _read(backend, commit.repo, commit.id, CONVERT_LABELS_FILE)
    if raw is not None:
        where = f"{_ref(commit)}:{CONVERT_LABELS_FILE}"
        found.append((where, parse_labels(raw, source=where)))
    if conversion and isinstance(conversion.get("labels"), list):
        found.append((f"{_ref(commit)}:{CONVERSION_FILE}", list(conversion["labels"])))
    if train is not None:
        raw = _read(backend, train.repo, train.id, TRAIN_LABELS_FILE)
        if raw is not None:
            where = f"{_ref(train)}:{TRAIN_LABELS_FILE}"
            found.append((where, parse_labels(raw, source=where)))
    if not found:
        raise LabelsMismatch(
            f"{_ref(commit)} holds no {CONVERT_LABELS_FILE} and its inputs no "
            f"{TRAIN_LABELS_FILE}: the label order of the model's outputs is unknown"
        )
    first_where, first = found[0]
    for where, labels in found[1:]:
        if labels != first:
            raise LabelsMismatch(
                f"{first_where} lists {first} but {where} lists {labels}; the model's output "
                "order is ambiguous. Re-run Train and Convert so they agree"
            )
    return first, first_where


def load_model_source(backend: Backend, ref: str | CommitInfo) -> ModelSource:
    """The model ``ref`` holds, its labels, audit and data commits (see ``ModelSource``).

    Raises ``NotAModel`` for a commit without ``optimized_graph.lite``,
    ``ModelNotPublished`` for a failed or blocked commit with no good model before it,
    ``LabelsMismatch`` when the labels disagree with each other or with the model's outputs,
    and ``InvalidModelFile`` when the stored model is not a valid TFLite file.
    """
    from . import tflite_file

    requested = resolve_commit(backend, ref)
    commit = requested
    if requested.error:
        commit = last_good_commit(backend, requested)
        if commit is None:
            raise ModelNotPublished(
                f"{_ref(requested)} holds no model: its job failed ({requested.error}) and no "
                f"earlier {requested.repo} commit published one. Fix what the job reports "
                "and let the pipelines run again",
                commit=requested,
            )
    content = _read(backend, commit.repo, commit.id, MODEL_FILE)
    if content is None:
        try:
            present = [f.path for f in backend.list_files(commit.repo, commit.id)][:8]
        except TulipError:
            present = []
        raise NotAModel(
            f"{_ref(commit)} holds no {MODEL_FILE} (it has {present or 'no files'}); "
            "name a commit of the Convert pipeline's output, e.g. Convert@master"
        )
    conversion = _read_json(backend, commit.repo, commit.id, CONVERSION_FILE)
    train = _input_with(backend, commit, TRAIN_LABELS_FILE, prefer="Train")
    labels, labels_where = _labels(backend, commit, train, conversion)
    source = f"{_ref(commit)}:{MODEL_FILE}"
    info = tflite_file.inspect_model(content, source=source)
    check_labels(labels, num_classes=info.num_classes, source=labels_where)
    data = data_commits(backend, commit)
    audit, problem = find_audit(backend, commit, data=data)
    metrics = _read_json(backend, train.repo, train.id, METRICS_FILE) if train else None
    blocked_audit = None
    if requested.error:
        blocked_audit, _ = find_audit(backend, requested, data=data_commits(backend, requested))
    return ModelSource(
        requested=requested,
        commit=commit,
        content=content,
        labels=tuple(labels),
        labels_source=labels_where,
        data=data,
        audit=audit,
        audit_problem=problem,
        train=train,
        blocked_audit=blocked_audit,
        metrics=metrics,
        conversion=conversion,
    )


# -- the gate and the export ------------------------------------------------------------------


def gate_objections(source: ModelSource) -> list[str]:
    """Why ``source`` may not ship without an override; empty when it may."""
    objections = []
    if source.blocked:
        objections.append(
            f"{_ref(source.requested)} holds no model of its own: its job failed "
            f"({source.requested.error}); its {MODEL_FILE} is carried over from "
            f"{_ref(source.commit)}, the last good model"
        )
    if source.audit is None:
        objections.append(source.audit_problem or f"{_ref(source.commit)} has no audit")
    elif source.audit.ref.verdict == "fail":
        objections.append(
            f"{_ref(source.commit)} failed its audit {_ref(source.audit.commit)}"
            + (f" ({source.audit.describe_failures()})" if source.audit.failing else "")
        )
    return objections


def _refusal(source: ModelSource, objections: list[str]) -> GateBlocked:
    ways = []
    if source.blocked:
        ok = source.audit is not None and source.audit.ref.verdict != "fail"
        if ok:
            ways.append(
                f"export the last good model as what it is: tulip export mobile "
                f"{_ref(source.commit)} ..."
            )
    ways.append("fix the data so the pipelines publish a model that passes its audit")
    ways.append("or pass --force --reason TEXT to export anyway (the override is recorded)")
    message = "; ".join(objections) + ". Refusing to export. Ways out: " + "; ".join(ways)
    if source.blocked:
        return ModelNotPublished(message, commit=source.requested, last_good=source.commit)
    return GateBlocked(message)


@dataclass(frozen=True)
class Release:
    """One export: what was exported, from where, past which objections, into which files."""

    export_id: str
    source: ModelSource
    manifest: metadata.Manifest
    result: Any  # mobile.export.ExportResult
    forced: bool
    reason: str | None
    overridden: tuple[str, ...]
    record: dict
    seconds: float

    @property
    def model_commit(self) -> str:
        return self.source.commit.id

    def as_dict(self) -> dict[str, Any]:
        return {**self.record, "seconds": round(self.seconds, 3)}


def export_release(
    backend: Backend,
    ref: str | CommitInfo,
    *,
    android: Path | str | None = None,
    ios: Path | str | None = None,
    force: bool = False,
    reason: str | None = None,
    device_check: bool = False,
    exported_at: _dt.datetime | None = None,
) -> Release:
    """Gate, stamp and export the model ``ref`` holds, then record the export in the lineage.

    Raises ``ModelNotPublished``/``GateBlocked`` (see the module docstring) unless ``force``
    with a ``reason``; ``OverrideWithoutReason`` for ``force`` alone; ``NotAModel``,
    ``LabelsMismatch``, ``InvalidModelFile`` and ``ExportTargetError`` for bad input. Every
    refusal leaves the app folders untouched. With ``device_check``, the model that passed
    the gate is first run through ``check_release`` (each app's preprocessing on the test
    split) and the result goes into the model card and the export record.
    """
    from auditor.lineage import record_export

    from .export import export_to_apps

    started = time.perf_counter()
    reason = (reason or "").strip() or None
    if force and reason is None:
        raise OverrideWithoutReason(
            "--force needs --reason TEXT: say why this model may ship despite the gate; "
            "the reason is recorded in the model, its card and the lineage"
        )
    if not android and not ios:
        raise ExportTargetError("no app folder given; pass --android DIR, --ios DIR, or both")
    source = load_model_source(backend, ref)
    objections = gate_objections(source)
    if objections and not force:
        raise _refusal(source, objections)
    override = reason if objections else None
    checked = check_release(backend, source) if device_check else None
    when = (exported_at or _dt.datetime.now(_dt.UTC)).astimezone(_dt.UTC)
    stamped = metadata.embed_manifest(
        source.content,
        provenance=source.provenance(override_reason=override),
        labels=source.labels,
        created=when,
        source=f"{_ref(source.commit)}:{MODEL_FILE}",
    )
    result = export_to_apps(
        stamped,
        android=android,
        ios=ios,
        metrics=source.metrics,
        device_check=None if checked is None else checked.report,
        variant=source.architecture,
        exported_at=when,
    )
    record = export_record(
        source,
        stamped,
        result,
        forced=bool(objections),
        reason=reason,
        overridden=objections,
    )
    if checked is not None:
        check = checked.as_dict()
        record["device_check"] = {
            k: check[k] for k in ("split", "images", "reference_accuracy", "max_changed", "flagged")
        } | {
            "platforms": [
                {k: p[k] for k in ("platform", "accuracy", "agreement", "flagged")}
                for p in check["platforms"]
            ]
        }
    try:
        export_id = record_export(backend, record)
    except Exception as exc:  # the files are out: say so, whatever stopped the record
        where = ", ".join(str(d) for d in result.asset_dirs.values())
        raise ExportNotRecorded(
            f"the model was exported to {where}, but the export could not be recorded in the "
            f"store ({exc}); the files carry their provenance, so `tulip identify` still "
            "works on them. Export again once the store is writable to record it"
        ) from exc
    return Release(
        export_id=export_id,
        source=source,
        manifest=stamped.manifest,
        result=result,
        forced=bool(objections),
        reason=reason,
        overridden=tuple(objections),
        record=record,
        seconds=time.perf_counter() - started,
    )


def export_record(
    source: ModelSource,
    stamped: metadata.StampedModel,
    result: Any,
    *,
    forced: bool,
    reason: str | None,
    overridden: Sequence[str] = (),
) -> dict[str, Any]:
    """The document ``record_export`` stores as ``tulip_exports:/exports/<id>.json``."""
    import uuid

    from pipelines import __version__

    audit = source.audit
    return {
        "id": uuid.uuid4().hex,
        "schema": EXPORT_SCHEMA,
        "model": {"repo": source.commit.repo, "commit": source.commit.id},
        "requested": {"repo": source.requested.repo, "commit": source.requested.id},
        "blocked": (
            {
                "commit": source.requested.id,
                "reason": source.requested.error,
                "audit": (
                    None if source.blocked_audit is None else source.blocked_audit.ref.as_dict()
                ),
            }
            if source.blocked
            else None
        ),
        "audit": None if audit is None else audit.ref.as_dict(),
        "forced": forced,
        "reason": reason,
        "overridden": list(overridden),
        "targets": sorted(result.asset_dirs),
        "asset_dirs": {k: str(Path(v).absolute()) for k, v in sorted(result.asset_dirs.items())},
        "files": [
            {
                "platform": f.platform,
                "path": str(Path(f.path).absolute()),
                "sha256": f.sha256,
                "size": f.size,
            }
            for f in result.files
        ],
        "sha256": stamped.sha256,
        "source_sha256": stamped.manifest.source_sha256,
        "weights_sha256": stamped.manifest.weights_sha256,
        "data": [r.as_dict() for r in source.data],
        "labels": list(source.labels),
        "architecture": source.architecture,
        "time": result.exported_at,
        "tulip_version": __version__,
    }


# -- identify ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoreIdentity:
    """A model file's own account of itself, and what a store knows about it.

    ``verdict``: ``known`` (intact, and the store holds the Convert output it was made
    from), ``unknown`` (intact, but this store never published it, or no store was
    asked), ``modified`` (changed since export) or ``no-manifest`` (not exported by Tulip;
    ``published`` may still name the commit whose bytes it is).
    """

    identity: metadata.Identity
    store: str | None
    published: dict | None = None
    exports: tuple[dict, ...] = ()
    model_exports: tuple[dict, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def status(self) -> str:
        return self.identity.status

    @property
    def verdict(self) -> str:
        if self.status != "intact":
            return self.status
        return "known" if self.published else "unknown"

    def headline(self) -> str:
        ident = self.identity
        m = ident.manifest
        if self.status == "modified":
            if m is None:
                return f"MODIFIED: its Tulip manifest is damaged: {'; '.join(ident.problems)}"
            return (
                f"MODIFIED since export: it claims to come from {m.model.repo}@{m.model.commit}, "
                "but it no longer matches its manifest"
            )
        if self.status == "no-manifest":
            base = "NO TULIP MANIFEST: a TensorFlow Lite model that Tulip did not export"
            if self.published:
                p = self.published
                base += f"; it is byte-identical to {p['repo']}@{p['commit']}:{MODEL_FILE}"
            return base
        if self.published:
            return (
                f"INTACT and KNOWN: exported from {m.model.repo}@{m.model.commit}, which this "
                "store published"
            )
        where = "no store was checked" if self.store is None else f"unknown to {self.store}"
        return f"INTACT but UNKNOWN: exported from {m.model.repo}@{m.model.commit}; {where}"

    def summary(self) -> str:
        m = self.identity.manifest
        parts = [self.headline()]
        if self.status == "modified" and m is not None:
            parts.extend(self.identity.problems)
        if m is not None and self.status == "intact":
            data = ", ".join(f"{r.repo}@{r.commit}" for r in m.data) or "none recorded"
            audit = (
                "none"
                if m.audit is None
                else f"{m.audit.verdict} ({m.audit.repo}@{m.audit.commit})"
            )
            parts.append(f"data {data}; audit {audit}")
            if m.override_reason:
                parts.append(f"exported past the gate: {m.override_reason}")
            if self.exports:
                parts.append(f"{len(self.exports)} recorded export(s) wrote this exact file")
        return "; ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema": "tulip.identify/v1",
            "verdict": self.verdict,
            "summary": self.summary(),
            **self.identity.as_dict(),
            "store": self.store,
            "published": self.published,
            "exports": list(self.exports),
            "model_exports": list(self.model_exports),
            "notes": list(self.notes),
        }


def find_published(
    backend: Backend, sha256: str, *, hint: metadata.CommitRef | None = None
) -> CommitInfo | None:
    """The commit whose job published a ``optimized_graph.lite`` with this content hash.

    The manifest's own model commit is checked first (one lookup); otherwise the repos of
    pipeline outputs are scanned, ``Convert`` first. Of several commits holding the same
    bytes (a blocked commit carries the last good model over), the one without ``error``
    that came first is the one that made it.
    """
    if hint is not None:
        try:
            commit = backend.inspect_commit(hint.repo, hint.commit)
        except (CommitNotFound, RepoNotFound):
            commit = None
        if commit is not None and _file_hash(backend, commit.repo, commit.id, MODEL_FILE) == sha256:
            if not commit.error:
                return commit
            return last_good_commit(backend, commit) or commit
    repos = [r.name for r in backend.list_repos() if r.pipeline or (hint and r.name == hint.repo)]
    repos.sort(key=lambda name: (name != "Convert", name))
    for repo in repos:
        matches = [
            c
            for c in backend.list_commits(repo)
            if c.finished is not None and _file_hash(backend, repo, c.id, MODEL_FILE) == sha256
        ]
        good = [c for c in matches if not c.error]
        if good or matches:
            return min(good or matches, key=lambda c: (c.started, c.id))
    return None


def export_records(backend: Backend) -> list[dict]:
    """Every export recorded in ``tulip_exports``, oldest first."""
    from auditor.lineage import EXPORTS_DIR, EXPORTS_REPO

    try:
        head = backend.inspect_branch(EXPORTS_REPO, "master").head
    except TulipError:
        return []
    if head is None:
        return []
    records = []
    try:
        files = list(backend.walk_files(EXPORTS_REPO, head, EXPORTS_DIR))
    except TulipError:
        return []
    for f in files:
        doc = _read_json(backend, EXPORTS_REPO, head, f.path)
        if doc and isinstance(doc.get("id"), str):
            records.append(doc)
    return sorted(records, key=lambda d: (str(d.get("time")), d["id"]))


def _export_brief(doc: dict) -> dict:
    return {
        k: doc.get(k)
        for k in ("id", "time", "model", "targets", "asset_dirs", "forced", "reason", "sha256")
    }


def identify_file(
    model: Path | str | bytes, *, backend: Backend | None = None, source: str | None = None
) -> StoreIdentity:
    """What a model file says about itself and, given a store, what the store knows of it.

    Raises ``InvalidModelFile`` only for a file that is not a readable TFLite model.
    """
    identity = metadata.identify(model, source=source)
    if backend is None:
        return StoreIdentity(identity, None)
    store = str(getattr(backend, "root", None) or backend.name)
    manifest = identity.manifest
    notes: list[str] = []
    published = find_published(
        backend, identity.source_sha256, hint=manifest.model if manifest else None
    )
    published_doc = None
    if published is not None:
        published_doc = {
            "repo": published.repo,
            "commit": published.id,
            "path": MODEL_FILE,
            "finished": published.as_dict()["finished"],
        }
        if manifest is not None and (
            (published.repo, published.id) != (manifest.model.repo, manifest.model.commit)
        ):
            notes.append(
                f"the manifest names {manifest.model.repo}@{manifest.model.commit}, but "
                f"{_ref(published)} is the commit that published these bytes"
            )
        if manifest is not None and manifest.audit and manifest.audit.commit:
            doc = _read_json(
                backend, manifest.audit.repo or "Audit", manifest.audit.commit, AUDIT_FILE
            )
            if doc and doc.get("verdict") != manifest.audit.verdict:
                notes.append(
                    f"the manifest records audit verdict {manifest.audit.verdict!r}, the store's "
                    f"{manifest.audit.repo}@{manifest.audit.commit} says {doc.get('verdict')!r}"
                )
    elif manifest is not None:
        notes.append(
            f"no commit of this store published a {MODEL_FILE} with sha256 "
            f"{identity.source_sha256[:12]}…; it was exported from another store, or the "
            "commits were deleted"
        )
    records = export_records(backend)
    exact = tuple(_export_brief(d) for d in records if d.get("sha256") == identity.file_sha256)
    same_model = ()
    if manifest is not None:
        same_model = tuple(
            _export_brief(d)
            for d in records
            if d.get("model") == manifest.model.as_dict()
            and d.get("sha256") != identity.file_sha256
        )
    return StoreIdentity(
        identity,
        store,
        published=published_doc,
        exports=exact,
        model_exports=same_model,
        notes=tuple(notes),
    )


# -- the device-equivalent check on the store's test split --------------------------------------


@dataclass(frozen=True)
class ReleaseCheck:
    source: ModelSource
    split: str
    images_commit: metadata.CommitRef
    paths: tuple[str, ...]  # repo paths, in the order of the report's images
    report: Any  # mobile.device_check.DeviceCheckReport
    local_to_repo: dict[str, str]

    @property
    def flagged(self) -> list[str]:
        return self.report.flagged

    def as_dict(self) -> dict[str, Any]:
        report = self.report.as_dict()
        report.pop("model", None)
        for platform in report["platforms"]:
            for changed in platform["changed"]:
                changed["path"] = self.local_to_repo.get(changed["path"], changed["path"])
        published = (self.source.conversion or {}).get("published") or {}
        return {
            "schema": CHECK_SCHEMA,
            "requested": {"repo": self.source.requested.repo, "commit": self.source.requested.id},
            "model": {"repo": self.source.commit.repo, "commit": self.source.commit.id},
            "model_file": f"{_ref(self.source.commit)}:{MODEL_FILE}",
            "blocked": (
                {"commit": self.source.requested.id, "reason": self.source.requested.error}
                if self.source.blocked
                else None
            ),
            "architecture": self.source.architecture,
            "split": self.split,
            "images_commit": self.images_commit.as_dict(),
            "keras_agreement": published.get("agreement"),
            **{k: v for k, v in report.items() if k != "schema"},
        }


def split_paths(splits: dict, split: str) -> list[str]:
    """Repo paths of one split of Train's ``splits.json`` (``held-out``: test + validation)."""
    wanted = {
        "test": {"test"},
        "validation": {"validation"},
        "held-out": {"test", "validation"},
        "all": {"train", "test", "validation"},
    }.get(split)
    if wanted is None:
        raise InvalidCheckInput(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    files = splits.get("files") or {}
    return sorted(p for p, entry in files.items() if (entry or {}).get("split") in wanted)


def check_release(
    backend: Backend,
    ref: str | CommitInfo | ModelSource,
    *,
    split: str = "test",
    platforms: Sequence[Any] = ("android", "ios"),
    max_changed: float | None = None,
    workdir: Path | None = None,
) -> ReleaseCheck:
    """Run the model ``ref`` holds as each app would, on the split Train held out.

    The images are copied out of the data commit Train read (into ``workdir``, or a
    temporary folder removed afterwards). The reference predictions are the same model's
    under the pipeline's own preprocessing; ``keras_agreement`` in the result is Convert's
    measured agreement between that model and the Keras model it came from.
    """
    from pipelines.records import label_of

    from .device_check import DEFAULT_MAX_CHANGED, check_platforms

    source = ref if isinstance(ref, ModelSource) else load_model_source(backend, ref)
    if source.train is None:
        raise InvalidCheckInput(
            f"{_ref(source.commit)} has no Train commit among its inputs, so there is no test "
            "split to check on; use `tulip predict` on images of your own"
        )
    splits = _read_json(backend, source.train.repo, source.train.id, SPLITS_FILE)
    if not splits:
        raise InvalidCheckInput(f"{_ref(source.train)} holds no readable {SPLITS_FILE}")
    paths = split_paths(splits, split)
    if not paths:
        raise InvalidCheckInput(
            f"the {split} split of {_ref(source.train)} is empty; try --split held-out or all"
        )
    images = None
    for candidate in _inputs(backend, source.train):
        if candidate.origin == USER and _file_hash(backend, candidate.repo, candidate.id, paths[0]):
            images = candidate
            break
    if images is None:
        raise InvalidCheckInput(
            f"none of the inputs of {_ref(source.train)} holds {paths[0]}: cannot find the "
            "images the model was trained on"
        )

    def run(folder: Path) -> ReleaseCheck:
        labeled, local_to_repo = [], {}
        for path in paths:
            target = folder / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            backend.copy_out(images.repo, images.id, path, target)
            labeled.append((target, label_of(path)))
            local_to_repo[str(target)] = f"{images.repo}@{images.id}:{path}"
        report = check_platforms(
            source.content,
            labeled,
            platforms=platforms,
            labels=list(source.labels),
            max_changed=DEFAULT_MAX_CHANGED if max_changed is None else max_changed,
        )
        return ReleaseCheck(
            source=source,
            split=split,
            images_commit=metadata.CommitRef(images.repo, images.id),
            paths=tuple(paths),
            report=report,
            local_to_repo=local_to_repo,
        )

    if workdir is not None:
        return run(Path(workdir))
    with tempfile.TemporaryDirectory(prefix="tulip-mobile-check-") as tmp:
        return run(Path(tmp))
