"""The lineage graph: what came from what, across every repo, commit, job and model of a store.

It answers three questions. What is *upstream* of a model: every data commit and file version
behind it. What is *downstream* of a data commit: its blast radius, every model, audit and
export that was built from data it introduced. What changed in the training data between two
models: which files and classes came and went, and through which commits.

The graph is a ``networkx.MultiDiGraph`` built only through the public methods of
``pipelines.backend.Backend``, so the embedded store and a Pachyderm cluster give the same graph
for the same history. Edges point downstream, from what came first to what was derived from
it; each edge's key is its ``kind``, so two nodes are joined at most once per kind.

Node IDs are stable strings (reports link to them). Every node has ``type`` (the first part
of its ID) and ``label``; times are POSIX floats in the graph and ISO-8601 in JSON. The ID an
attribute would call ``id`` is ``commit``/``job``/``export``, since node-link JSON owns ``id``.

==================================  ==========================================================
``repo:<name>``                     a repo: name, repo_type (user/spec), pipeline, description
``commit:<repo>@<id>``              a commit: repo, branch, commit, kind (data/spec/output),
                                    origin, parent, started, finished, size_bytes, error,
                                    description, metadata; data commits also files,
                                    files_added, files_modified, files_deleted
``pipeline:<name>@v<version>``      a spec version: name, version, spec, spec_commit, current
``job:<pipeline>@<id>``             a job: pipeline, job, state, reason, created, started,
                                    finished, data_processed/skipped/failed/recovered/total,
                                    spec_version
``file:<repo>:<path>@<sha[:16]>``   a file version (one per repo, path and content): repo,
                                    path, sha256, size, cls (its folder: the class label)
``model:<repo>@<id>``               an output commit's own model file: repo, commit, path,
                                    sha256, size, created
``audit:<repo>@<id>``               an output commit's own /audit.json: repo, commit, verdict,
                                    findings, by_severity, by_check, data, reference
``review:<id>``                     a review of an audit's findings (``tulip_reviews``): review,
                                    by, via, time, audit, data, fix, description, counts,
                                    findings, record
``export:<id>``                     a mobile export from ``tulip_exports``: export, model,
                                    audit, forced, reason, targets, sha256, time, record
==================================  ==========================================================

Edge kinds: ``contains`` (repo → commit), ``parent`` (parent → child commit), ``provenance``
(input commit → output commit, one per ``direct_provenance`` entry, spec commits included),
``input_of`` (input commit → job), ``produced`` (job → output commit), ``version_of`` (spec
commit → pipeline version), ``spec_of`` (pipeline version → job), ``introduced`` (data commit →
file version it added or changed), ``removed`` (data commit → file version it deleted or
replaced), ``is_model``/``is_audit`` (commit → model/audit), ``exported`` (model → export),
``gated`` (audit → export), ``reviewed`` (audit → review: the findings it decided; from the
audited data commit when the audit was a file) and ``fixed`` (review → the fix commit it made).

The queries do not follow every edge. A data commit's files are its content, not something
derived from it, and a later commit on the same branch derives from an earlier one only
while it still holds a file version the earlier one introduced: that is what ``upstream``
and ``downstream`` compute, from ``introduced``/``removed`` and ``parent``.

The package, by seam: ``graph`` (the vocabulary: node IDs, types, edge kinds, and stepping
along edges), ``build`` (the graph from a backend), ``queries`` (upstream, downstream,
``lineage_around``), ``diff`` (what changed in the data between two models), ``render``
(node-link JSON, Graphviz DOT, text) and ``exports`` (the ``tulip_exports`` ledger: the one
write here, ``record_export``, and its reads).

Imports point one way: ``auditor`` imports ``pipelines`` (and ``training``), never the CLI.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# Each public name and the module that declares it: ``auditor.lineage.build_graph`` and
# ``from auditor.lineage import upstream`` work, and importing the package imports none of them.
_EXPORTS = {
    **dict.fromkeys(
        (
            *("AUDIT", "COMMIT", "CONTAINS", "DATA", "DERIVATION", "EDGE_KINDS", "EXPORT"),
            *("EXPORTED", "FILE", "GATED", "INPUT_OF", "INTRODUCED", "IS_AUDIT", "IS_MODEL"),
            *("JOB", "MODEL", "NODE_TYPES", "OUTPUT", "PARENT", "PIPELINE", "PRODUCED"),
            *("PROVENANCE", "REMOVED", "REPO", "SCHEMA", "SPEC", "SPEC_OF", "VERSION_OF"),
            *("REVIEW", "REVIEWED", "FIXED", "review_node"),
            *("LineageError", "as_commit", "audit_node", "changes", "children_of"),
            *("commit_node", "export_node", "file_class", "file_node", "has_files"),
            *("is_data_commit", "job_node", "model_node", "model_of", "parent_of"),
            *("pipeline_node", "repo_node", "require_files", "require_node", "walk"),
        ),
        "graph",
    ),
    **dict.fromkeys(("add_file_versions", "build_graph"), "build"),
    **dict.fromkeys(
        (
            *("DIRECTIONS", "LineageView", "all_data_repos", "data_commits", "data_repos_near"),
            *("downstream", "holding_commits", "influenced_commits", "lineage_around"),
            *("live_files", "models", "node_for_ref", "subgraph", "upstream"),
        ),
        "queries",
    ),
    **dict.fromkeys(
        ("CommitChanges", "TrainingDataDiff", "lineage_diff", "training_data_diff"), "diff"
    ),
    **dict.fromkeys(
        (
            *("TIMES", "canonical", "describe", "diff_text", "dot_quote", "from_node_link"),
            *("grouped", "to_dot", "to_node_link", "to_text"),
        ),
        "render",
    ),
    **dict.fromkeys(
        ("ExportRecord", "InvalidExportRecord", "list_exports", "record_export"), "exports"
    ),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'auditor.lineage' has no attribute {name!r}")
    return getattr(import_module(f"auditor.lineage.{_EXPORTS[name]}"), name)
