"""Which model a Convert commit really holds, and everything known about it: its labels in
output order, its audit, the Train commit and the data commits behind it.

``load_model_source(backend, ref)`` is what export, identify and the release check start
from. A commit whose job failed or was blocked by the gate holds the *carried-over* files of
the last good commit; the source then names both (``requested`` and ``commit``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from auditor.status import last_good_commit
from pipelines.backend import Backend
from pipelines.errors import CommitNotFound, RepoNotFound, TulipError
from pipelines.info import USER, CommitInfo
from pipelines.layout import (
    AUDIT,
    AUDIT_FILE,
    CONVERSION_FILE,
    LABELS_FILE,
    METRICS_FILE,
    SPEC_SUFFIX,
    TFLITE_FILE,
    TFLITE_LABELS_FILE,
    TRAIN,
    MalformedDocument,
    read_json,
    read_optional,
    stat_optional,
)

from . import metadata
from .errors import LabelsMismatch, ModelNotPublished, NotAModel
from .labels import check_labels, parse_labels

# -- reading the store ------------------------------------------------------------------------


def file_hash(backend: Backend, repo: str, commit_id: str, path: str) -> str | None:
    """The content hash of the file at ``path``, None if the commit holds none there."""
    info = stat_optional(backend, repo, commit_id, path)
    return None if info is None else info.hash


def inputs_of(backend: Backend, commit: CommitInfo) -> list[CommitInfo]:
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
    inputs = sorted(inputs_of(backend, commit), key=lambda c: (c.repo != prefer, c.repo))
    for candidate in inputs:
        if file_hash(backend, candidate.repo, candidate.id, path) is not None:
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


@dataclass(frozen=True)
class AuditInfo:
    """The audit among a model commit's inputs, as read; whether it lets the model through is
    the gate's to say (``conversion.gate.decide``)."""

    ref: metadata.AuditRef
    document: dict
    commit: CommitInfo


def find_audit(backend: Backend, commit: CommitInfo) -> tuple[AuditInfo | None, str | None]:
    """The audit that gates ``commit``: an input commit holding ``/audit.json``.

    Returns the audit, or None with the reason there is none to ask: no such input, an audit
    job that failed (its audit.json is carried over from older data), or a file that is not
    a JSON document.
    """
    audit_commit = _input_with(backend, commit, AUDIT_FILE, prefer=AUDIT)
    if audit_commit is None:
        return None, (
            f"{commit.ref} has no audit: none of its inputs holds {AUDIT_FILE} (is the Audit "
            "pipeline one of Convert's inputs?)"
        )
    if audit_commit.error:
        return None, (
            f"the audit job {audit_commit.ref} failed ({audit_commit.error}); its "
            f"{AUDIT_FILE} is left over from older data"
        )
    try:
        doc = read_json(backend, audit_commit.repo, audit_commit.id, AUDIT_FILE)
    except MalformedDocument as e:
        return None, str(e)
    if doc is None:  # removed since _input_with saw it: nothing to ask
        return None, f"{audit_commit.ref} holds no {AUDIT_FILE}"
    ref = metadata.AuditRef(str(doc.get("verdict")), audit_commit.repo, audit_commit.id)
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
            audit=self.audit.ref
            if self.audit is not None and self.audit.ref.verdict in metadata.VERDICTS
            else None,
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
            f"{commit.ref} is still being computed; wait for it with "
            f"`tulip wait commit {commit.ref}` and try again"
        )
    return commit


def _labels(
    backend: Backend, commit: CommitInfo, train: CommitInfo | None, conversion: dict | None
) -> tuple[list[str], str]:
    """The labels in output order, from every place that states them; they must agree."""
    found: list[tuple[str, list[str]]] = []
    raw = read_optional(backend, commit.repo, commit.id, TFLITE_LABELS_FILE)
    if raw is not None:
        where = f"{commit.ref}:{TFLITE_LABELS_FILE}"
        found.append((where, parse_labels(raw, source=where)))
    if conversion and isinstance(conversion.get("labels"), list):
        found.append((f"{commit.ref}:{CONVERSION_FILE}", list(conversion["labels"])))
    if train is not None:
        raw = read_optional(backend, train.repo, train.id, LABELS_FILE)
        if raw is not None:
            where = f"{train.ref}:{LABELS_FILE}"
            found.append((where, parse_labels(raw, source=where)))
    if not found:
        raise LabelsMismatch(
            f"{commit.ref} holds no {TFLITE_LABELS_FILE} and its inputs no "
            f"{LABELS_FILE}: the label order of the model's outputs is unknown"
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
                f"{requested.ref} holds no model: its job failed ({requested.error}) and no "
                f"earlier {requested.repo} commit published one. Fix what the job reports "
                "and let the pipelines run again",
                commit=requested,
            )
    content = read_optional(backend, commit.repo, commit.id, TFLITE_FILE)
    if content is None:
        try:
            present = [f.path for f in backend.list_files(commit.repo, commit.id)][:8]
        except TulipError:
            present = []
        raise NotAModel(
            f"{commit.ref} holds no {TFLITE_FILE} (it has {present or 'no files'}); "
            "name a commit of the Convert pipeline's output, e.g. Convert@master"
        )
    conversion = read_json(backend, commit.repo, commit.id, CONVERSION_FILE)
    train = _input_with(backend, commit, LABELS_FILE, prefer=TRAIN)
    labels, labels_where = _labels(backend, commit, train, conversion)
    source = f"{commit.ref}:{TFLITE_FILE}"
    info = tflite_file.inspect_model(content, source=source)
    check_labels(labels, num_classes=info.num_classes, source=labels_where)
    data = data_commits(backend, commit)
    audit, problem = find_audit(backend, commit)
    metrics = read_json(backend, train.repo, train.id, METRICS_FILE) if train else None
    blocked_audit = None
    if requested.error:
        blocked_audit, _ = find_audit(backend, requested)
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
