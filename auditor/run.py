"""The audit use cases: a data commit of a backend, or a plain folder, to an ``AuditResult``.

``tulip audit`` and the Audit stage (``python -m auditor.stage``) both call these two
functions, so an audit means the same thing from the command line and in the pipeline:

* ``audit_commit(backend, ref)``: a data commit; its embeddings from Embed's output when
  there is one, else computed here.
* ``audit_folder(path)``: a folder of class subfolders (CI, or ``/pfs/<data>`` in the stage),
  with Embed's records when the caller has them.

``run_audit`` (auditor/audit.py) is pure; this module gathers its inputs (embeddings, the
reference gallery, the baseline's embeddings for the commit-relative checks, the split of
each file). Given a store (``history``), it picks the baseline (``auditor.baseline``: the last
audited ancestor that did not fail), withholds the per-file findings a review accepted (the
review ledger), fills each finding's ``introduced_by`` from the path history, which is what
blame reads, and writes the verdict onto the audited data commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from auditor.audit import AuditResult, run_audit
from auditor.baseline import Baseline, select_baseline
from auditor.batches import CommitBatches, batches_since
from auditor.findings import CLASS_LEVEL
from auditor.policy import Policy, load_policy
from auditor.review.ledger import load_ledger
from auditor.review.withhold import withhold_accepted
from auditor.sources import (
    class_files_in_dir,
    embed_images,
    embed_output_for,
    embeddings_for_commit,
    records_from_backend,
    stray_records,
    with_stray,
)
from pipelines.backend import Backend
from pipelines.errors import TulipError
from pipelines.layout import AUDIT, AUDIT_KEY, EMBED, VERDICT_KEY
from pipelines.records import EmbeddingSet
from pipelines.refs import Ref, parse_ref
from training.backbones import DEFAULT_ARCHITECTURE
from training.embedding_cache import EmbeddingCache, default_cache_dir

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
"""``progress(step, done, total)``; step is ``embed`` or ``reference`` (images embedded), or
``audit`` (the audit's steps, :data:`auditor.audit.STEPS`)."""


@dataclass
class AuditInputs:
    data: EmbeddingSet
    data_ref: dict
    reference: EmbeddingSet | None = None
    reference_ref: dict | None = None
    previous: EmbeddingSet | None = None
    previous_ref: dict | None = None
    source: str = "computed"
    batches: CommitBatches | None = None  # the commits since the baseline (batch_contamination)


def audit_commit(
    backend: Backend,
    ref: Ref | str,
    *,
    reference: Ref | str | None = None,
    policy: Policy | Path | None = None,
    architecture: str | None = None,
    cache: EmbeddingCache | None = None,
    progress: Progress | None = None,
    audit_repo: str = AUDIT,
) -> AuditResult:
    """Audit the data commit ``ref`` (``flower_photos@master``) of ``backend``.

    ``reference``: a labelled gallery commit. ``policy``: a ``Policy`` or a policy file.
    ``architecture``: the backbone for embeddings computed here (default: Embed's, else
    ``mobilenet_1.0_224``). ``cache``: where computed embeddings are kept (default: the
    store's cache). The last audited ancestor that did not fail is the baseline of the
    commit-relative checks; findings a review accepted are not re-flagged. The verdict is
    written onto the data commit's metadata.
    """
    pol = _policy(policy)
    ref = parse_ref(ref) if isinstance(ref, str) else ref
    if cache is None:
        cache = EmbeddingCache(default_cache_dir(getattr(backend, "root", None)))
    inputs = gather_commit(
        backend,
        ref,
        reference=parse_ref(reference) if isinstance(reference, str) else reference,
        architecture=architecture,
        cache=cache,
        progress=progress,
    )
    return _audit_with_history(
        inputs, pol, backend, audit_repo=audit_repo, audit_commit=None, progress=progress
    )


def audit_folder(
    folder: Path,
    *,
    reference: Path | None = None,
    policy: Policy | Path | None = None,
    architecture: str | None = None,
    cache: EmbeddingCache | None = None,
    progress: Progress | None = None,
    embeddings: EmbeddingSet | None = None,
    source: str | None = None,
    data_ref: dict | None = None,
    reference_ref: dict | None = None,
    history: Backend | None = None,
    audit_repo: str = AUDIT,
    audit_commit: str | None = None,
) -> AuditResult:
    """Audit a folder of class subfolders (``<label>/<image>``), with no store needed.

    ``embeddings``: the folder's records when already computed (Embed's output, named by
    ``source``); otherwise they are computed through ``cache``. ``data_ref`` and
    ``reference_ref`` name what the folders are copies of (``{"repo", "branch", "commit"}``);
    by default their absolute paths. With ``history`` (the store the data commit lives in),
    findings are blamed on commits, the last audited ancestor that did not fail gives the
    commit-relative checks their baseline, the review ledger withholds accepted findings, and
    the verdict is written onto the data commit, naming ``audit_commit``.
    """
    pol = _policy(policy)
    if cache is None:
        cache = EmbeddingCache(default_cache_dir(getattr(history, "root", None)))
    inputs = gather_dir(
        folder,
        reference=reference,
        architecture=architecture,
        cache=cache,
        progress=progress,
        embeddings=embeddings,
    )
    if source is not None:
        inputs.source = source
    if data_ref is not None:
        inputs.data_ref = data_ref
    if reference_ref is not None and inputs.reference is not None:
        inputs.reference_ref = reference_ref
    if history is None or not inputs.data_ref.get("commit"):
        return audit(inputs, policy=pol, progress=progress)
    return _audit_with_history(
        inputs, pol, history, audit_repo=audit_repo, audit_commit=audit_commit, progress=progress
    )


def _policy(policy: Policy | Path | None) -> Policy:
    return policy if isinstance(policy, Policy) else load_policy(policy)


def _audit_with_history(
    inputs: AuditInputs,
    policy: Policy,
    backend: Backend,
    *,
    audit_repo: str,
    audit_commit: str | None,
    progress: Progress | None = None,
) -> AuditResult:
    repo, commit = inputs.data_ref["repo"], inputs.data_ref["commit"]
    baseline = _add_previous(inputs, backend) if inputs.previous is None else None
    if inputs.batches is None:
        since = (
            baseline.commit if baseline is not None else (inputs.previous_ref or {}).get("commit")
        )
        try:
            inputs.batches = batches_since(backend, repo, commit, since)
        except NotImplementedError:  # a backend without diff file: no commit-aware checks
            log.info("backend %s cannot diff commits; batch_contamination skipped", backend.name)
    result = audit(
        inputs,
        policy=policy,
        introduced_by=lambda paths: backend.introduced_by(repo, commit, paths),
        progress=progress,
    )
    result = _withhold_accepted(result, inputs, backend)
    if baseline is not None:
        result.document["baseline"] = baseline.to_dict()
    record_verdict(backend, result.document, audit_commit=audit_commit, audit_repo=audit_repo)
    return result


def _add_previous(inputs: AuditInputs, backend: Backend) -> Baseline:
    """The baseline of the commit-relative checks (``auditor.baseline``: the last audited
    ancestor that did not fail), and its embeddings when Embed kept them."""
    repo, commit = inputs.data_ref["repo"], inputs.data_ref["commit"]
    baseline = select_baseline(backend, repo, commit)
    if baseline.commit is None:
        return baseline
    embed_commit = embed_output_for(backend, repo, baseline.commit)
    if embed_commit is None:
        return baseline
    previous = records_from_backend(backend, EMBED, embed_commit)
    if previous.architecture == inputs.data.architecture:
        inputs.previous = previous
        inputs.previous_ref = {"repo": repo, "commit": baseline.commit}
    return baseline


def _withhold_accepted(result: AuditResult, inputs: AuditInputs, backend: Backend) -> AuditResult:
    """Per-file findings a review accepted (same content, same label) are not re-flagged; the
    document says how many (``review.not_reflagged``). Reads only the ledger shards of the
    files that per-file findings name."""
    sha256_of = dict(zip(inputs.data.paths, inputs.data.sha256, strict=True))
    sha256_of.update({r.path: r.sha256 for r in inputs.data.unreadable if r.sha256})
    named = {
        sha256_of.get(p) for f in result.findings if f.check not in CLASS_LEVEL for p in f.files
    }
    ledger = load_ledger(backend, named - {None}) if named - {None} else {}
    doc, withheld = withhold_accepted(result.document, sha256_of=sha256_of, ledger=ledger)
    findings = [f for f in result.findings if f.id not in withheld]
    return replace(result, document=doc, findings=findings)


def splits_for(data: EmbeddingSet) -> dict[str, str]:
    """The split Train gives each file: a function of its content alone, so Audit agrees."""
    from training.splits import split_of

    return {p: split_of(sha) for p, sha in zip(data.paths, data.sha256, strict=True)}


def audit(
    inputs: AuditInputs,
    *,
    policy: Policy | None = None,
    introduced_by: Callable[[list[str]], dict[str, str]] | None = None,
    progress: Progress | None = None,
) -> AuditResult:
    """Run the checks on gathered inputs; ``introduced_by(paths)`` blames files on commits."""
    result = run_audit(
        inputs.data,
        reference=inputs.reference,
        previous=inputs.previous,
        splits=splits_for(inputs.data),
        policy=policy,
        data_ref=inputs.data_ref,
        reference_ref=inputs.reference_ref,
        previous_ref=inputs.previous_ref,
        batches=inputs.batches,
        progress=None if progress is None else (lambda _step, d, t: progress("audit", d, t)),
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
    return inputs


def gather_dir(
    path: Path,
    *,
    reference: Path | None = None,
    architecture: str | None = None,
    cache: EmbeddingCache | None = None,
    progress: Progress | None = None,
    embeddings: EmbeddingSet | None = None,
) -> AuditInputs:
    """The inputs to audit a plain folder of class subfolders (for CI, no store needed)."""
    path = Path(path)
    if embeddings is None:
        arch = architecture or DEFAULT_ARCHITECTURE
        images, stray = class_files_in_dir(path)
        if not images:
            raise TulipError(f"{path} holds no images in class folders (<label>/<image>)")
        data = embed_images(
            images,
            architecture=arch,
            cache=cache,
            progress=(lambda d, t: progress("embed", d, t)) if progress else None,
        )
        source = "computed"
    else:  # Embed's records; the folder only adds the files outside any class folder
        arch = embeddings.architecture or architecture or DEFAULT_ARCHITECTURE
        stray = class_files_in_dir(path)[1] if path.is_dir() else []
        data, source = embeddings, "records"
    inputs = AuditInputs(
        with_stray(data, stray_records(stray)),
        {"repo": str(path.resolve()), "branch": None, "commit": None},
        source=source,
    )
    if reference is not None:
        ref_images, _ = class_files_in_dir(reference)
        if ref_images:
            inputs.reference = embed_images(
                ref_images,
                architecture=arch,
                cache=cache,
                progress=(lambda d, t: progress("reference", d, t)) if progress else None,
            )
            inputs.reference_ref = {"repo": str(Path(reference).resolve()), "commit": None}
    return inputs


def record_verdict(
    backend: Backend,
    document: dict,
    *,
    audit_commit: str | None = None,
    audit_repo: str = AUDIT,
) -> None:
    """Write the verdict and finding counts onto the audited data commit, where
    ``tulip inspect commit`` (and ``pachctl inspect commit``) users see them."""
    data = document.get("data") or {}
    if not data.get("commit"):
        return
    meta = {
        VERDICT_KEY: document["verdict"],
        "tulip.findings": str(len(document.get("findings", []))),
    }
    for severity, n in (document.get("summary", {}).get("severities") or {}).items():
        meta[f"tulip.findings.{severity}"] = str(n)
    if audit_commit:
        meta[AUDIT_KEY] = f"{audit_repo}@{audit_commit}"
    try:
        backend.set_commit_metadata(data["repo"], data["commit"], meta)
    except NotImplementedError:
        log.info("backend %s keeps no commit metadata; verdict not written back", backend.name)
