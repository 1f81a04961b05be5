"""The lineage graph's vocabulary: node IDs and types, commit and edge kinds, and the steps
every query takes along edges. The node and edge tables are in the package docstring."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import networkx as nx

from pipelines.errors import TulipError
from pipelines.layout import label_of

SCHEMA = "tulip.lineage/v1"


# Node types
REPO, COMMIT, PIPELINE, JOB, FILE, MODEL, AUDIT, REVIEW, EXPORT = (
    "repo",
    "commit",
    "pipeline",
    "job",
    "file",
    "model",
    "audit",
    "review",
    "export",
)
NODE_TYPES = (REPO, COMMIT, PIPELINE, JOB, FILE, MODEL, AUDIT, REVIEW, EXPORT)

# Commit kinds
DATA, SPEC, OUTPUT = "data", "spec", "output"

# Edge kinds
CONTAINS = "contains"
PARENT = "parent"
PROVENANCE = "provenance"
INPUT_OF = "input_of"
PRODUCED = "produced"
VERSION_OF = "version_of"
SPEC_OF = "spec_of"
INTRODUCED = "introduced"
REMOVED = "removed"
IS_MODEL = "is_model"
IS_AUDIT = "is_audit"
EXPORTED = "exported"
GATED = "gated"
REVIEWED = "reviewed"
FIXED = "fixed"
EDGE_KINDS = (
    CONTAINS,
    PARENT,
    PROVENANCE,
    INPUT_OF,
    PRODUCED,
    VERSION_OF,
    SPEC_OF,
    INTRODUCED,
    REMOVED,
    IS_MODEL,
    IS_AUDIT,
    EXPORTED,
    GATED,
    REVIEWED,
    FIXED,
)

# What "derived from" means for the queries: everything but containment, history and content.
DERIVATION = frozenset(
    {PROVENANCE, INPUT_OF, PRODUCED, VERSION_OF, SPEC_OF, IS_MODEL, IS_AUDIT, EXPORTED, GATED}
    | {REVIEWED, FIXED}
)


class LineageError(TulipError):
    """A lineage query asked about something the graph does not hold."""


# -- node IDs -------------------------------------------------------------------------------


def repo_node(name: str) -> str:
    return f"repo:{name}"


def commit_node(repo: str, commit_id: str) -> str:
    return f"commit:{repo}@{commit_id}"


def pipeline_node(name: str, version: int) -> str:
    return f"pipeline:{name}@v{version}"


def job_node(pipeline: str, job_id: str) -> str:
    return f"job:{pipeline}@{job_id}"


def file_node(repo: str, path: str, sha256: str) -> str:
    return f"file:{repo}:{path}@{sha256[:16]}"


def model_node(repo: str, commit_id: str) -> str:
    return f"model:{repo}@{commit_id}"


def audit_node(repo: str, commit_id: str) -> str:
    return f"audit:{repo}@{commit_id}"


def review_node(review_id: str) -> str:
    return f"review:{review_id}"


def export_node(export_id: str) -> str:
    return f"export:{export_id}"


def file_class(path: str) -> str | None:
    """The class of a file of a folder-per-class dataset (``pipelines.layout.label_of``)."""
    return label_of(path) or None


# -- stepping along edges -----------------------------------------------------------------------


def require_node(G: nx.MultiDiGraph, node: str) -> dict:
    if node not in G:
        raise LineageError(
            f"{node} is not in the lineage graph; check the reference "
            "(`tulip list commit REPO` shows commits)"
        )
    return G.nodes[node]


def walk(
    G: nx.MultiDiGraph, starts: Iterable[str], *, forward: bool, kinds: frozenset[str]
) -> set[str]:
    """Every node reachable from ``starts`` along edges of ``kinds`` (downstream if forward)."""
    seen = set(starts)
    stack = list(seen)
    while stack:
        n = stack.pop()
        edges = G.out_edges(n, keys=True) if forward else G.in_edges(n, keys=True)
        for u, v, k in edges:
            if k not in kinds:
                continue
            m = v if forward else u
            if m not in seen:
                seen.add(m)
                stack.append(m)
    return seen


def is_data_commit(G: nx.MultiDiGraph, n: str) -> bool:
    a = G.nodes[n]
    return a.get("type") == COMMIT and a.get("kind") == DATA


def parent_of(G: nx.MultiDiGraph, n: str) -> str | None:
    for u, _v, k in G.in_edges(n, keys=True):
        if k == PARENT:
            return u
    return None


def children_of(G: nx.MultiDiGraph, n: str) -> Iterator[str]:
    for _u, v, k in G.out_edges(n, keys=True):
        if k == PARENT:
            yield v


def changes(G: nx.MultiDiGraph, n: str, kind: str) -> list[str]:
    """The file versions a data commit ``introduced`` or ``removed`` (``kind``)."""
    return [v for _u, v, k in G.out_edges(n, keys=True) if k == kind]


def has_files(G: nx.MultiDiGraph, commit: str) -> bool:
    return G.nodes[commit].get("repo") in (G.graph.get("files") or [])


def require_files(G: nx.MultiDiGraph, commit: str) -> None:
    if not has_files(G, commit):
        raise LineageError(
            f"the lineage graph holds no file versions of {G.nodes[commit].get('repo')}; "
            "build it with include_files"
        )


def as_commit(G: nx.MultiDiGraph, node: str) -> str:
    """A model or audit node's commit; a commit node itself."""
    attrs = require_node(G, node)
    if attrs.get("type") in (MODEL, AUDIT):
        for u, _v, k in G.in_edges(node, keys=True):
            if k in (IS_MODEL, IS_AUDIT):
                return u
    if attrs.get("type") != COMMIT:
        raise LineageError(f"{node} is a {attrs.get('type')}; give a model or commit")
    return node


def model_of(G: nx.MultiDiGraph, node: str) -> str:
    """The model node of a commit that holds one; the node itself otherwise."""
    for _u, v, k in G.out_edges(node, keys=True):
        if k == IS_MODEL:
            return v
    return node
