"""Auditing with I/O: a data commit of a backend, or a plain folder, to an ``AuditResult``.

``run_audit`` (auditor/audit.py) is pure; this module gathers its inputs (embeddings, the
reference gallery, the previous audit's embeddings for drift, the split of each file) and
fills each finding's ``introduced_by`` from the path history, which is what blame reads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from auditor.audit import AuditResult, run_audit
from auditor.policy import Policy
from auditor.sources import (
    EmbeddingCache,
    class_files_in_dir,
    embed_images,
    embed_output_for,
    embeddings_for_commit,
    previous_audit,
    records_from_backend,
    stray_records,
    with_stray,
)
from pipelines.backend import Backend
from pipelines.errors import TulipError
from pipelines.records import EmbeddingSet
from pipelines.refs import Ref

log = logging.getLogger(__name__)

AUDIT_PIPELINE = "Audit"
Progress = Callable[[str, int, int], None]


@dataclass
class AuditInputs:
    data: EmbeddingSet
    data_ref: dict
    reference: EmbeddingSet | None = None
    reference_ref: dict | None = None
    previous: EmbeddingSet | None = None
    previous_ref: dict | None = None
    source: str = "computed"


def splits_for(data: EmbeddingSet) -> dict[str, str]:
    """The split Train gives each file: a function of its content alone, so Audit agrees."""
    from training.splits import split_of

    return {p: split_of(sha) for p, sha in zip(data.paths, data.sha256, strict=True)}


def audit(
    inputs: AuditInputs,
    *,
    policy: Policy | None = None,
    introduced_by: Callable[[list[str]], dict[str, str]] | None = None,
) -> AuditResult:
    result = run_audit(
        inputs.data,
        reference=inputs.reference,
        previous=inputs.previous,
        splits=splits_for(inputs.data),
        policy=policy,
        data_ref=inputs.data_ref,
        reference_ref=inputs.reference_ref,
        previous_ref=inputs.previous_ref,
    )
    if introduced_by is not None:
        paths = sorted({p for f in result.findings for p in f.files})
        origin = introduced_by(paths) if paths else {}
        repo = inputs.data_ref["repo"]
        result = result.with_introduced_by(
            lambda p: [{"repo": repo, "commit": origin[p]}] if p in origin else []
        )
    result.document["embeddings"] = {
        "source": inputs.source,
        "architecture": inputs.data.architecture,
    }
    return result


def _reference(
    backend: Backend, ref: Ref, architecture: str | None, cache, progress
) -> tuple[EmbeddingSet, dict]:
    commit = backend.resolve(ref)
    data, _source = embeddings_for_commit(
        backend,
        ref.repo,
        commit.id,
        architecture=architecture,
        cache=cache,
        progress=(lambda d, t: progress("reference", d, t)) if progress else None,
    )
    return data, {"repo": ref.repo, "branch": commit.branch, "commit": commit.id}


def gather_commit(
    backend: Backend,
    data: Ref,
    *,
    reference: Ref | None = None,
    architecture: str | None = None,
    cache: EmbeddingCache | None = None,
    progress: Progress | None = None,
) -> AuditInputs:
    """The inputs to audit one data commit, from Embed's output when it has been computed."""
    commit = backend.resolve(data)
    emb, source = embeddings_for_commit(
        backend,
        data.repo,
        commit.id,
        architecture=architecture,
        cache=cache,
        progress=(lambda d, t: progress("embed", d, t)) if progress else None,
    )
    if len(emb) == 0 and not emb.unreadable:
        raise TulipError(
            f"{data.repo}@{commit.id} holds no images in class folders (/<label>/<image>)"
        )
    inputs = AuditInputs(
        emb, {"repo": data.repo, "branch": commit.branch, "commit": commit.id}, source=source
    )
    if reference is not None:
        inputs.reference, inputs.reference_ref = _reference(
            backend, reference, emb.architecture, cache, progress
        )
    prev = previous_audit(backend, AUDIT_PIPELINE, data.repo, commit.id)
    if prev is not None:
        prev_commit = prev["data"]["commit"]
        embed_commit = embed_output_for(backend, data.repo, prev_commit)
        if embed_commit is not None:
            previous = records_from_backend(backend, "Embed", embed_commit)
            if previous.architecture == emb.architecture:
                inputs.previous = previous
                inputs.previous_ref = {"repo": data.repo, "commit": prev_commit}
    return inputs


def gather_dir(
    path: Path,
    *,
    reference: Path | None = None,
    architecture: str | None = None,
    cache: EmbeddingCache | None = None,
    progress: Progress | None = None,
) -> AuditInputs:
    """The inputs to audit a plain folder of class subfolders (for CI, no store needed)."""
    arch = architecture or "mobilenet_1.0_224"
    images, stray = class_files_in_dir(path)
    if not images:
        raise TulipError(f"{path} holds no images in class folders (<label>/<image>)")
    data = embed_images(
        images,
        architecture=arch,
        cache=cache,
        progress=(lambda d, t: progress("embed", d, t)) if progress else None,
    )
    inputs = AuditInputs(
        with_stray(data, stray_records(stray)),
        {"repo": str(Path(path).resolve()), "branch": None, "commit": None},
    )
    if reference is not None:
        ref_images, _ = class_files_in_dir(reference)
        inputs.reference = embed_images(
            ref_images,
            architecture=arch,
            cache=cache,
            progress=(lambda d, t: progress("reference", d, t)) if progress else None,
        )
        inputs.reference_ref = {"repo": str(Path(reference).resolve()), "commit": None}
    return inputs


def record_verdict(backend: Backend, document: dict, *, audit_commit: str | None = None) -> None:
    """Write the verdict and finding counts onto the audited data commit, where
    ``tulip inspect commit`` (and ``pachctl inspect commit``) users see them."""
    data = document.get("data") or {}
    if not data.get("commit"):
        return
    meta = {
        "tulip.verdict": document["verdict"],
        "tulip.findings": str(len(document.get("findings", []))),
    }
    for severity, n in (document.get("summary", {}).get("severities") or {}).items():
        meta[f"tulip.findings.{severity}"] = str(n)
    if audit_commit:
        meta["tulip.audit"] = f"{AUDIT_PIPELINE}@{audit_commit}"
    try:
        backend.set_commit_metadata(data["repo"], data["commit"], meta)
    except NotImplementedError:
        log.info("backend %s keeps no commit metadata; verdict not written back", backend.name)
