"""Where did a model file come from? Its embedded manifest, checked against a store.

``identify_file(path, backend=...)``: a ``.tflite`` file's manifest and integrity
(``mobile.metadata.identify``) and, given a store, the commit that published its bytes and
the recorded exports that wrote it. Works on a file pulled off a phone, store or no store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditor.lineage.exports import list_exports
from auditor.status import last_good_commit
from pipelines.backend import Backend
from pipelines.errors import CommitNotFound, RepoNotFound
from pipelines.info import CommitInfo
from pipelines.layout import (
    AUDIT,
    AUDIT_FILE,
    CONVERT,
    TFLITE_FILE,
    VARIANTS_DIR,
    MalformedDocument,
    read_json,
)

from . import metadata
from .source import file_hash


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
                base += f"; it is byte-identical to {p['repo']}@{p['commit']}:{TFLITE_FILE}"
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
        if self.identity.min_runtime_version:
            parts.append(f"needs TensorFlow Lite {self.identity.min_runtime_version} or newer")
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


def published_path(backend: Backend, commit: CommitInfo, sha256: str) -> str | None:
    """Which file of the Convert commit ``commit`` has this content: the published model,
    or a variant it kept (export ships one to an app whose TFLite runtime is too old)."""
    from .runtime import FALLBACK_ORDER

    for path in (TFLITE_FILE, *(f"{VARIANTS_DIR}/{v}.tflite" for v in FALLBACK_ORDER)):
        if file_hash(backend, commit.repo, commit.id, path) == sha256:
            return path
    return None


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
        if commit is not None and published_path(backend, commit, sha256) is not None:
            if not commit.error:
                return commit
            return last_good_commit(backend, commit) or commit
    repos = [r.name for r in backend.list_repos() if r.pipeline or (hint and r.name == hint.repo)]
    repos.sort(key=lambda name: (name != CONVERT, name))
    for repo in repos:
        matches = [
            c
            for c in backend.list_commits(repo)
            if c.finished is not None and file_hash(backend, repo, c.id, TFLITE_FILE) == sha256
        ]
        good = [c for c in matches if not c.error]
        if good or matches:
            return min(good or matches, key=lambda c: (c.started, c.id))
    return None


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
            "path": published_path(backend, published, identity.source_sha256) or TFLITE_FILE,
            "finished": published.as_dict()["finished"],
        }
        if manifest is not None and (
            (published.repo, published.id) != (manifest.model.repo, manifest.model.commit)
        ):
            notes.append(
                f"the manifest names {manifest.model.repo}@{manifest.model.commit}, but "
                f"{published.ref} is the commit that published these bytes"
            )
        if manifest is not None and manifest.audit and manifest.audit.commit:
            try:
                doc = read_json(
                    backend, manifest.audit.repo or AUDIT, manifest.audit.commit, AUDIT_FILE
                )
            except (MalformedDocument, CommitNotFound, RepoNotFound):
                doc = None
            if doc and doc.get("verdict") != manifest.audit.verdict:
                notes.append(
                    f"the manifest records audit verdict {manifest.audit.verdict!r}, the store's "
                    f"{manifest.audit.repo}@{manifest.audit.commit} says {doc.get('verdict')!r}"
                )
    elif manifest is not None:
        notes.append(
            f"no commit of this store published a {TFLITE_FILE} with sha256 "
            f"{identity.source_sha256[:12]}…; it was exported from another store, or the "
            "commits were deleted"
        )
    records = [r.document for r in list_exports(backend)]
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
