"""Exporting a model from the store into the apps: the gate, the stamp, the files, the record.

``export_release(backend, ref, android=..., ios=...)``: the model a Convert commit holds
(``mobile.source``), past the gate (``conversion.gate``, the same one the Convert stage
runs), stamped with its provenance (``mobile.metadata``), into the apps (``mobile.export``),
then recorded in the ledger ``tulip_exports`` (``auditor.lineage.exports.record_export``),
where the lineage graph shows it.

What may stop it, in the order it is checked; ``force`` with a ``reason`` overrides each,
and the override is written into the manifest, the model card and the export record:

1. the commit's job failed or was blocked (``error`` is set): ``ModelNotPublished``;
2. no audit: no commit with ``/audit.json`` among the commit's inputs (``GateBlocked``);
3. the gate: an audit that is not a ``tulip.audit/v1`` document, that failed, or that is of
   other data than the model's (``GateBlocked``);
4. an app whose TensorFlow Lite runtime cannot load the model, when Convert kept no variant
   that it can (``RuntimeTooOld``, exit 2; ``mobile.runtime``).

Both errors exit 3 from the CLI. Library code only: nothing here prints or exits.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from conversion.gate import decide
from pipelines.backend import Backend
from pipelines.errors import GateBlocked
from pipelines.info import CommitInfo
from pipelines.layout import AUDIT_FILE, GATE_BLOCKED, TFLITE_FILE, VARIANTS_DIR, read_optional

from . import metadata
from . import runtime as runtimes
from .errors import (
    ExportNotRecorded,
    ExportTargetError,
    ModelNotPublished,
    OverrideWithoutReason,
    RuntimeTooOld,
)
from .release_check import check_release
from .source import ModelSource, load_model_source

EXPORT_SCHEMA = "tulip.mobile-export/v1"


def gate_objection(source: ModelSource) -> str | None:
    """Why the gate refuses the model ``source`` holds (``conversion.gate``); None if it may go."""
    if source.audit is None:
        return source.audit_problem or f"{source.commit.ref} has no audit"
    try:
        decide(
            source.audit.document,
            data_commits=[r.commit for r in source.data],
            source=f"{source.audit.commit.ref}:{AUDIT_FILE}",
        )
    except GateBlocked as e:
        return f"the gate blocks {source.commit.ref} on {source.audit.commit.ref}: " + str(
            e
        ).removeprefix(f"{GATE_BLOCKED}: ")
    return None


def gate_objections(source: ModelSource) -> list[str]:
    """Why ``source`` may not ship without an override; empty when it may."""
    objections = []
    if source.blocked:
        objections.append(
            f"{source.requested.ref} holds no model of its own: its job failed "
            f"({source.requested.error}); its {TFLITE_FILE} is carried over from "
            f"{source.commit.ref}, the last good model"
        )
    gate = gate_objection(source)
    if gate is not None:
        objections.append(gate)
    return objections


def _refusal(source: ModelSource, objections: list[str]) -> GateBlocked:
    ways = []
    if source.blocked and gate_objection(source) is None:
        ways.append(
            f"export the last good model as what it is: tulip export mobile {source.commit.ref} ..."
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
    android_runtime: str | None = None,
    ios_runtime: str | None = None,
) -> Release:
    """Gate, stamp and export the model ``ref`` holds, then record the export in the lineage.

    Raises ``ModelNotPublished``/``GateBlocked`` (see the module docstring) unless ``force``
    with a ``reason``; ``OverrideWithoutReason`` for ``force`` alone; ``NotAModel``,
    ``LabelsMismatch``, ``InvalidModelFile`` and ``ExportTargetError`` for bad input. Every
    refusal leaves the app folders untouched. With ``device_check``, the model that passed
    the gate is first run through ``check_release`` (each app's preprocessing on the test
    split) and the result goes into the model card and the export record.

    ``android_runtime``/``ios_runtime`` (default ``mobile.runtime.DEFAULT_RUNTIMES``): the
    TFLite runtime each app ships; the model must load there (``choose_runtime``), else
    ``RuntimeTooOld`` before anything is written.
    """
    from auditor.lineage.exports import record_export

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
    targets = {
        p: given or runtimes.DEFAULT_RUNTIMES[p]
        for p, root, given in (("android", android, android_runtime), ("ios", ios, ios_runtime))
        if root
    }
    try:
        choice = choose_runtime(backend, source, targets)
    except RuntimeTooOld as e:
        if not force:
            raise
        objections = [*objections, str(e)]  # forced: the published model, and it is recorded
        need = runtimes.required_runtime(source.content)
        choice = runtimes.RuntimeChoice(None, source.content, need, need, targets)
    override = reason if objections else None
    # the device check runs the model that ships, a variant included
    shipped = source if choice.variant is None else replace(source, content=choice.content)
    checked = check_release(backend, shipped) if device_check else None
    when = (exported_at or _dt.datetime.now(_dt.UTC)).astimezone(_dt.UTC)
    stamped = metadata.embed_manifest(
        choice.content,
        provenance=source.provenance(override_reason=override),
        labels=source.labels,
        created=when,
        source=f"{source.commit.ref}:{TFLITE_FILE}",
    )
    result = export_to_apps(
        stamped,
        android=android,
        ios=ios,
        metrics=source.metrics,
        device_check=None if checked is None else checked.report,
        variant=source.architecture
        if choice.variant is None
        else f"{(source.metrics or {}).get('architecture') or ''} {choice.variant}".strip(),
        exported_at=when,
        runtime=choice.as_dict(),
    )
    record = export_record(
        source,
        stamped,
        result,
        forced=bool(objections),
        reason=reason,
        overridden=objections,
    )
    record["runtime"] = choice.as_dict()
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


def choose_runtime(
    backend: Backend, source: ModelSource, targets: dict[str, str]
) -> runtimes.RuntimeChoice:
    """The model every target app's TFLite runtime can load (``mobile.runtime``): the
    published one, else a variant Convert kept (``variants/<name>.tflite``) that passed its
    agreement check; ``RuntimeTooOld`` when none fits. Variants are read only when needed."""
    need = runtimes.required_runtime(source.content, source=f"{source.commit.ref}:{TFLITE_FILE}")
    runtimes.validate_targets(targets)
    variants: dict[str, bytes] = {}
    if not all(runtimes.runs_on(need, t) for t in targets.values()):
        report = (source.conversion or {}).get("variants") or {}
        floor = ((source.conversion or {}).get("policy") or {}).get("min_agreement")
        for name in runtimes.FALLBACK_ORDER:
            content = read_optional(
                backend, source.commit.repo, source.commit.id, f"{VARIANTS_DIR}/{name}.tflite"
            )
            row = report.get(name) or {}
            if content is None or row.get("sha256") != hashlib.sha256(content).hexdigest():
                continue  # not kept, or not the file Convert measured
            if floor is not None and (row.get("agreement") or 0) < floor:
                continue  # Convert found it disagrees with the Keras model
            variants[name] = content
    return runtimes.choose_for_runtimes(
        source.content,
        targets,
        variants=variants,
        published_variant=source.variant,
        source=f"{source.commit.ref}:{TFLITE_FILE}",
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
