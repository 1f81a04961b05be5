"""Run every check on one data commit's embeddings and decide the verdict.

Pure: embeddings in, findings and the ``tulip.audit/v1`` document out. No store, no
TensorFlow, no printing; the same inputs and policy give the same findings (every random
choice is seeded). The Audit stage and ``tulip audit`` load the EmbeddingSets, call
:func:`run_audit`, fill ``introduced_by`` through blame (:meth:`AuditResult.with_introduced_by`)
and write the document.

Order matters: copies are found first (class-level tests set exact copies aside and keep near
copies in one fold), then class-level problems (overlap, lookalikes, new labels, drift,
imbalance), and only then per-image label issues, with the classes that class-level findings
join merged, so that one misnamed class does not flood the per-image queue.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from auditor.batches import CommitBatches
from auditor.checks.batch_contamination import batch_contamination
from auditor.checks.class_imbalance import class_imbalance
from auditor.checks.class_overlap import class_overlap, overlap_matrix
from auditor.checks.cross_class_duplicate import cross_class_duplicate
from auditor.checks.drift import drift
from auditor.checks.duplicate import duplicate
from auditor.checks.label_issue import (
    commit_neighbours,
    judged_batches,
    label_issue,
    label_scores,
)
from auditor.checks.lookalike_class import gallery_match, lookalike_class
from auditor.checks.new_label import new_label
from auditor.checks.split_leakage import split_leakage
from auditor.checks.unreadable_file import unreadable_file
from auditor.explain import explain_label_issues
from auditor.features import auto_dims, fit_projection, stacked_sample
from auditor.findings import SCORES, Finding, audit_document, with_introduced_by
from auditor.neighbours import (
    GRAPH_K,
    column_mean,
    duplicate_groups,
    nearest,
    neighbour_graph,
)
from auditor.policy import Policy
from auditor.sampling import class_codes
from pipelines.errors import TulipError
from pipelines.records import EmbeddingSet


class IncompatibleEmbeddings(TulipError):
    """A reference gallery (or the previous commit) embedded in another space than the data."""


@dataclass(frozen=True)
class AuditResult:
    document: dict[str, Any]
    findings: list[Finding]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        return self.document["verdict"]

    def with_introduced_by(
        self, commits_of: Callable[[str], Iterable[Mapping[str, str]]]
    ) -> AuditResult:
        """The same result with each finding's ``introduced_by`` filled from its files
        (``commits_of(path)`` gives the {"repo", "commit"} that added the path)."""
        findings = with_introduced_by(self.findings, commits_of)
        by_key = {_key(f): f for f in findings}
        doc = dict(self.document)
        doc["findings"] = [
            by_key[_key(Finding.from_dict(d))].to_dict() for d in self.document["findings"]
        ]
        return replace(self, document=doc, findings=findings)


def _key(f: Finding) -> tuple:
    return (f.check, f.severity, tuple(f.classes), tuple(f.files), f.message)


#: the audit's steps in the order they run, for a progress bar (``progress(step, done, total)``)
STEPS = (
    "neighbours",
    "duplicate",
    "cross_class_duplicate",
    "split_leakage",
    "features",
    "class_overlap",
    "lookalike_class",
    "new_label",
    "drift",
    "batch_contamination",
    "class_imbalance",
    "label_issue",
)
Progress = Callable[[str, int, int], None]


class AuditOutOfMemory(TulipError):
    """An audit step needed more memory than the machine has."""


#: the way out of an audit too large for the machine's memory (the sampling option first)
OUT_OF_MEMORY_ADVICE = (
    "sample the class-level tests harder (a policy file with [class_overlap], "
    "[lookalike_class] and [drift] sample_per_class = 500), audit a subset of the "
    "classes, or use a machine with more memory"
)


def out_of_memory(where: str, rows: int | None = None) -> AuditOutOfMemory:
    """The error for a MemoryError raised ``where`` (a step, or reading the embeddings)."""
    size = f" of {rows:,} images" if rows else ""
    return AuditOutOfMemory(f"the audit{size} ran out of memory {where}; {OUT_OF_MEMORY_ADVICE}")


class _Clock:
    def __init__(self, progress: Progress | None = None, rows: int = 0) -> None:
        self.timings: dict[str, float] = {}
        self.progress = progress
        self.rows = rows

    def run(self, name: str, fn: Callable[[], Any]) -> Any:
        if self.progress is not None and name in STEPS:
            self.progress(name, STEPS.index(name), len(STEPS))
        t = time.perf_counter()
        try:
            return fn()
        except MemoryError:
            raise out_of_memory(f"in its {name} step", self.rows) from None
        finally:
            self.timings[name] = round(self.timings.get(name, 0.0) + time.perf_counter() - t, 4)


def _projection_points(
    plane: np.ndarray, labels: list[str], paths: list[str], limit: int, seed: int
) -> dict[str, Any] | None:
    if len(plane) == 0:
        return None
    rows = np.arange(len(plane))
    if len(rows) > limit:
        rows = np.sort(np.random.default_rng(seed).choice(len(rows), limit, replace=False))
    return {
        "method": "pca",
        "points": len(rows),
        "of": len(plane),
        "x": [round(float(v), 4) for v in plane[rows, 0]],
        "y": [round(float(v), 4) for v in plane[rows, 1]],
        "label": [labels[i] for i in rows],
        "path": [paths[i] for i in rows],
    }


def _class_stats(
    data: EmbeddingSet, findings: list[Finding], known: set[str] | None, reference: set[str] | None
) -> dict[str, dict[str, Any]]:
    """Per class: images, unreadable files, spread (mean squared distance of its unit rows to
    their centre, = 1 - |mean unit row|^2), novelty. One chunked pass over the rows."""
    stats: dict[str, dict[str, Any]] = {}
    classes, codes = class_codes(data.labels)
    k = len(classes)
    sums = np.zeros((k, data.vectors.shape[1]) if len(data) else (k, 0))
    norms2 = np.zeros(k)
    for start in range(0, len(data), 65_536):
        part = np.asarray(data.vectors[start : start + 65_536], dtype=np.float32)
        u = part / np.maximum(np.linalg.norm(part, axis=1, keepdims=True), 1e-12)
        c = codes[start : start + 65_536]
        np.add.at(sums, c, u)
        np.add.at(norms2, c, (u.astype(np.float64) ** 2).sum(axis=1))
    counts = np.bincount(codes, minlength=k) if k else np.zeros(0, int)
    unreadable: dict[str, int] = {}
    for r in data.unreadable:
        unreadable[r.label] = unreadable.get(r.label, 0) + 1
    index = {c: i for i, c in enumerate(classes)}
    for label in sorted(set(classes) | set(unreadable)):
        i = index.get(label)
        n = int(counts[i]) if i is not None else 0
        spread = None
        if n > 1:
            mean = sums[i] / n
            spread = round(float(max(norms2[i] / n - (mean**2).sum(), 0.0)), 4)
        stats[label] = {
            "images": n,
            "unreadable": unreadable.get(label, 0),
            "spread": spread,
            "new": None if known is None else label not in known,
            "in_reference": None if reference is None else label in reference,
            "findings": {},
        }
    for f in findings:
        for label in set(f.classes):
            if label in stats:
                counts_ = stats[label]["findings"]
                counts_[f.check] = counts_.get(f.check, 0) + 1
    return stats


def run_audit(
    data: EmbeddingSet,
    *,
    reference: EmbeddingSet | None = None,
    previous: EmbeddingSet | None = None,
    splits: Mapping[str, str] | None = None,
    policy: Policy | None = None,
    data_ref: Mapping[str, str],
    reference_ref: Mapping[str, str] | None = None,
    previous_ref: Mapping[str, str] | None = None,
    known_labels: Collection[str] | None = None,
    batches: CommitBatches | None = None,
    progress: Progress | None = None,
) -> AuditResult:
    """Audit ``data``. reference: a labelled gallery of other pictures (lookalike_class,
    new_label). previous: the last audited commit's embeddings (drift; new labels; it serves as
    the gallery when no reference is given, which catches a renamed class). splits: split name
    per path (split_leakage). data_ref / reference_ref / previous_ref: {repo, branch, commit}
    for the document. known_labels: labels with a precedent (e.g. the previous audit's
    ``summary.classes``) when the previous embeddings are not at hand: new_label then reports
    the others. batches: the commits since the baseline and the files each added
    (batch_contamination; label_issue's out-of-sample opinions skip the image's own commit).
    progress: called as each step starts, with (step, steps done, steps)."""
    policy = (policy or Policy()).for_architecture(data.architecture)
    args = (data, reference, previous, splits, policy, data_ref, reference_ref, previous_ref,
            progress)  # fmt: skip
    threads = int(policy.audit["threads"])
    if threads <= 0:
        return _run_audit(*args, known_labels, batches)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads):
        return _run_audit(*args, known_labels, batches)


def _run_audit(
    data: EmbeddingSet,
    reference: EmbeddingSet | None,
    previous: EmbeddingSet | None,
    splits: Mapping[str, str] | None,
    policy: Policy,
    data_ref: Mapping[str, str],
    reference_ref: Mapping[str, str] | None,
    previous_ref: Mapping[str, str] | None,
    progress: Progress | None,
    known_labels: Collection[str] | None,
    batches: CommitBatches | None = None,
) -> AuditResult:
    seed = int(policy.audit["seed"])
    clock = _Clock(progress, len(data))
    started = time.perf_counter()
    findings: list[Finding] = []

    def run(
        check: str, fn: Callable[..., list[Finding]], *args: Any, **kwargs: Any
    ) -> list[Finding]:
        if not policy.enabled(check):
            return []
        found = clock.run(check, lambda: fn(*args, **policy.options(check), **kwargs))
        findings.extend(found)
        return found

    x, labels, paths = data.vectors, list(data.labels), list(data.paths)
    n = len(x)
    known: set[str] | None = None if known_labels is None else set(known_labels)
    if previous is not None or reference is not None:
        known = (
            (known or set())
            | set(previous.labels if previous is not None else ())
            | set(reference.labels if reference is not None else ())
        )
    gallery, gallery_name = (
        (reference, "reference") if reference is not None else (previous, "previous commit")
    )
    if gallery is not None and len(gallery) and gallery.vectors.shape[1] != x.shape[1]:
        raise IncompatibleEmbeddings(
            f"the {gallery_name} embeddings are {gallery.vectors.shape[1]}-d but the data's are "
            f"{x.shape[1]}-d: embed both with the same architecture"
        )

    run(
        "unreadable_file",
        unreadable_file,
        [r.path for r in data.unreadable],
        [r.reason for r in data.unreadable],
        labels=[r.label for r in data.unreadable],
    )

    # shared work: copies, neighbours and the whitened space. One neighbour graph answers
    # every neighbour question: near copies (and so cross-class copies and leakage) and the
    # label vote. Below the exact/HNSW crossover the pairs are the exact all-pairs scan.
    center = column_mean(x) if n else None
    thresholds = [
        policy.settings[c]["near_threshold"]
        for c in ("duplicate", "cross_class_duplicate", "split_leakage")
        if policy.enabled(c)
    ]
    near = min([*thresholds, policy.settings["duplicate"]["near_threshold"]])
    graph = None
    pairs = np.zeros((0, 3))
    if n:
        graph = clock.run(
            "neighbours",
            lambda: neighbour_graph(
                x,
                max(GRAPH_K, int(policy.settings["label_issue"]["k"]) + 8),
                center=center,
                method=str(policy.audit["neighbours"]),
                exact_below=int(policy.audit["exact_below"]),
                threads=int(policy.audit["ann_threads"]),
                seed=seed,
                pairs_at=near,
            ),
        )
        pairs = graph.pairs(near)
    groups = duplicate_groups(n, sha256=data.sha256, pairs=pairs)
    copies = dict(sha256=data.sha256, center=center, pairs=pairs)
    if n:
        run("duplicate", duplicate, x, labels, paths, **copies)
        run("cross_class_duplicate", cross_class_duplicate, x, labels, paths, **copies)
        if splits:
            run("split_leakage", split_leakage, x, labels, paths, splits, **copies)

    statistical = n >= 3 and len(set(labels)) >= 1
    features = gallery_features = None
    overlap = match = None
    if statistical:

        def project():
            parts = [x] + [s.vectors for s in (reference, previous) if s is not None and len(s)]
            n_classes = len(set(labels) | (known or set()))
            dims = int(policy.audit["dims"]) or auto_dims(n_classes)
            return fit_projection(stacked_sample(parts, seed=seed), dims=dims, seed=seed)

        projection = clock.run("features", project)
        features = projection(x)

        if policy.enabled("class_overlap"):
            opts = policy.options("class_overlap")
            overlap = clock.run(
                "class_overlap",
                lambda: overlap_matrix(
                    features,
                    labels,
                    sha256=data.sha256,
                    groups=groups,
                    folds=opts["folds"],
                    ridge=opts["ridge"],
                    min_images=opts["min_images"],
                    sample_per_class=opts["sample_per_class"],
                    seed=seed,
                ),
            )
            run(
                "class_overlap",
                class_overlap,
                x,
                labels,
                paths,
                sha256=data.sha256,
                known_labels=known,
                matrix=overlap,
                seed=seed,
            )

        if gallery is not None and len(gallery):
            gallery_features = projection(gallery.vectors)
            opts = policy.options("lookalike_class")
            if policy.enabled("lookalike_class") or policy.enabled("new_label"):
                match = clock.run(
                    "lookalike_class",
                    lambda: gallery_match(
                        features,
                        labels,
                        gallery_features,
                        gallery.labels,
                        sha256=data.sha256,
                        candidates=opts["candidates"],
                        folds=opts["folds"],
                        ridge=opts["ridge"],
                        min_images=opts["min_images"],
                        sample_per_class=opts["sample_per_class"],
                        seed=seed,
                    ),
                )
            run(
                "lookalike_class",
                lookalike_class,
                x,
                labels,
                paths,
                gallery.vectors,
                gallery.labels,
                match=match,
                gallery_name=gallery_name,
                seed=seed,
            )
            run(
                "new_label",
                new_label,
                x,
                labels,
                paths,
                gallery.vectors,
                gallery.labels,
                known_labels=known,
                threshold=opts["threshold"],
                match=match,
                gallery_name=gallery_name,
                seed=seed,
            )
        elif known is not None:
            run(
                "new_label",
                new_label,
                x,
                labels,
                paths,
                known_labels=known,
                gallery_name=gallery_name,
                seed=seed,
            )

    if previous is not None and len(previous) and n:
        run(
            "drift",
            drift,
            x,
            labels,
            paths,
            previous.vectors,
            previous.labels,
            sha256=data.sha256,
            previous_sha256=previous.sha256,
            seed=seed,
        )

    batch = batches.codes(paths) if batches is not None and batches.order else None
    if statistical and batch is not None:
        run(
            "batch_contamination",
            batch_contamination,
            x,
            labels,
            paths,
            batch,
            list(batches.order),
            features=features,
            seed=seed,
        )

    run("class_imbalance", class_imbalance, labels, paths)

    if statistical and policy.enabled("label_issue"):
        merge = [f.classes for f in findings if f.check in ("class_overlap", "lookalike_class")]
        merge = [m for m in merge if all(c in set(labels) for c in m)]
        opts = policy.options("label_issue")
        judged = None
        if batch is not None:  # no image hears its own commit's images
            judged = judged_batches(batch, labels, merge=merge, least=opts["folds"])
            neighbours = clock.run(
                "label_issue",
                lambda: commit_neighbours(
                    x, opts["k"], judged, groups=groups, center=center, graph=graph
                ),
            )
        else:
            neighbours = clock.run(
                "label_issue",
                lambda: nearest(x, opts["k"], groups=groups, center=center, graph=graph),
            )
        scores = clock.run(
            "label_issue",
            lambda: label_scores(
                x,
                labels,
                merge=merge,
                k=opts["k"],
                temperature=opts["temperature"],
                regularization=opts["regularization"],
                folds=opts["folds"],
                queue_factor=opts["queue_factor"],
                groups=groups,
                features=features,
                neighbours=neighbours,
                batch=judged,
                seed=seed,
            ),
        )
        run("label_issue", label_issue, x, labels, paths, merge=merge, scores=scores, seed=seed)
        if scores is not None:  # per-image explanations: neighbours, probabilities, signals
            shown = None
            if gallery is not None and len(gallery):
                shown = (gallery.vectors, list(gallery.labels), list(gallery.paths))
            findings[:] = clock.run(
                "label_issue",
                lambda: explain_label_issues(
                    findings, scores, x, labels, paths, gallery=shown,
                    gallery_name=gallery_name, center=center,
                ),
            )  # fmt: skip

    plane = projection.plane(x) if statistical else np.zeros((0, 2))
    clock.timings["total"] = round(time.perf_counter() - started, 4)
    extra = {
        "previous": None
        if previous_ref is None
        else {k: previous_ref.get(k) for k in ("repo", "branch", "commit")},
        "architecture": data.architecture,
        "class_stats": _class_stats(
            data, findings, known, None if reference is None else set(reference.labels)
        ),
        "overlap": None
        if overlap is None
        else {**overlap.to_dict(), "threshold": policy.settings["class_overlap"]["threshold"]},
        "gallery": None if match is None else {**match.to_dict(), "source": gallery_name},
        "projection": _projection_points(
            plane, labels, paths, int(policy.audit["projection_points"]), seed
        ),
        "scores": {c: SCORES[c] for c in sorted({f.check for f in findings})},
        "policy": policy.to_dict(),
        "timings": dict(clock.timings),
        "batches": None if batches is None else batches.to_dict(),
    }
    if progress is not None:
        progress("done", len(STEPS), len(STEPS))
    doc = audit_document(
        findings,
        data_ref=data_ref,
        reference_ref=reference_ref,
        labels=labels,
        unreadable=len(data.unreadable),
        extra=extra,
    )
    return AuditResult(document=doc, findings=list(findings), timings=dict(clock.timings))
