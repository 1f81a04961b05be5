"""Questions the lineage graph answers: what is upstream of a node (everything it was built
from), what is downstream (its blast radius), and ``lineage_around``, the use case behind
``tulip lineage``: the graph around one reference, with the file versions its queries need.

A data commit's files are its content, not something derived from it, and a later commit on
the same branch derives from an earlier one only while it still holds a file version the
earlier one introduced: ``upstream`` and ``downstream`` follow ``introduced``/``removed`` and
``parent`` for that, and the derivation edges for the rest.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import networkx as nx

from pipelines.backend import Backend
from pipelines.refs import parse_ref

from .build import add_file_versions, build_graph
from .graph import (
    AUDIT,
    COMMIT,
    CONTAINS,
    DATA,
    DERIVATION,
    FILE,
    INTRODUCED,
    IS_AUDIT,
    IS_MODEL,
    MODEL,
    NODE_TYPES,
    REMOVED,
    REPO,
    LineageError,
    as_commit,
    changes,
    children_of,
    commit_node,
    file_node,
    has_files,
    is_data_commit,
    parent_of,
    require_files,
    require_node,
    walk,
)

DIRECTIONS = ("upstream", "downstream", "both")


def node_for_ref(backend: Backend, text: str) -> str:
    """``REPO@REF`` to its commit node, ``REPO@REF:/PATH`` to that file version's node."""
    ref = parse_ref(text)
    commit = backend.resolve(ref)
    if ref.path is None or ref.path == "/":
        return commit_node(commit.repo, commit.id)
    info = backend.inspect_file(commit.repo, commit.id, ref.path)
    if info.type != "file" or not info.hash:
        raise LineageError(
            f"{ref.path} in {commit.repo}@{commit.id} is a directory; lineage tracks files: "
            f"name one file, or drop the path for the whole commit"
        )
    return file_node(commit.repo, info.path, info.hash)


def live_files(G: nx.MultiDiGraph, commit: str) -> dict[str, tuple[str, str]]:
    """The file versions a data commit holds: path -> (file node, commit that introduced it).

    Walks the commit's history back to the root; the latest change to a path decides it.
    """
    require_files(G, commit)
    decided: set[str] = set()
    live: dict[str, tuple[str, str]] = {}
    c: str | None = commit
    while c is not None:
        for f in changes(G, c, INTRODUCED):
            path = G.nodes[f]["path"]
            if path not in decided:
                decided.add(path)
                live[path] = (f, c)
        for f in changes(G, c, REMOVED):
            decided.add(G.nodes[f]["path"])
        c = parent_of(G, c)
    return live


def influenced_commits(G: nx.MultiDiGraph, commit: str) -> set[str]:
    """Data commits (this one and later ones) still holding a file version this one introduced.

    A commit that only deleted files influences itself alone.
    """
    if not has_files(G, commit):
        return {commit}
    path_of = {f: G.nodes[f]["path"] for f in changes(G, commit, INTRODUCED)}
    result = {commit}
    stack = [(commit, frozenset(path_of.values()))]
    while stack:
        c, alive = stack.pop()
        for child in children_of(G, c):
            touched = {G.nodes[f]["path"] for f in changes(G, child, INTRODUCED)}
            touched |= {G.nodes[f]["path"] for f in changes(G, child, REMOVED)}
            still = alive - touched
            if still and child not in result:
                result.add(child)
                stack.append((child, still))
    return result


def holding_commits(G: nx.MultiDiGraph, file: str) -> set[str]:
    """The data commits in which this file version is present."""
    path = G.nodes[file]["path"]
    result: set[str] = set()
    for origin, _f, k in G.in_edges(file, keys=True):
        if k != INTRODUCED:
            continue
        stack = [origin]
        while stack:
            c = stack.pop()
            if c in result:
                continue
            result.add(c)
            for child in children_of(G, c):
                touched = {G.nodes[f]["path"] for f in changes(G, child, REMOVED)}
                if path not in touched:
                    stack.append(child)
    return result


def upstream(
    G: nx.MultiDiGraph, node: str, *, kinds: Iterable[str] | None = None, history: bool = True
) -> set[str]:
    """Everything ``node`` was built from: commits, jobs, pipeline versions, audits, and (with
    ``history``) every file version present in the data commits behind it, plus the earlier
    data commits that introduced them. ``kinds`` keeps only nodes of those types
    (``commit``, ``file``, ``model``…). The node itself is not included; repos never are."""
    require_node(G, node)
    found = walk(G, [node], forward=False, kinds=DERIVATION | {INTRODUCED})
    start = as_commit(G, node) if G.nodes[node].get("type") in (MODEL, AUDIT) else node
    for c in [n for n in found if G.nodes[n].get("type") == COMMIT and n != start]:
        found.update(v for _u, v, k in G.out_edges(c, keys=True) if k in (IS_MODEL, IS_AUDIT))
    if history:
        for c in [n for n in found if is_data_commit(G, n) and has_files(G, n)]:
            for f, introduced_in in live_files(G, c).values():
                found.add(f)
                found.add(introduced_in)
    found.discard(node)
    return _only(G, found, kinds)


def downstream(G: nx.MultiDiGraph, node: str, *, kinds: Iterable[str] | None = None) -> set[str]:
    """Everything built from ``node``: its blast radius. From a data commit, that is every
    commit, job, model, audit and export derived from it or from a later commit that still
    holds a file version it introduced; from a file version, from the commits holding it."""
    attrs = require_node(G, node)
    starts = {node}
    if attrs.get("type") == COMMIT and attrs.get("kind") == DATA:
        starts |= influenced_commits(G, node)
    elif attrs.get("type") == FILE:
        starts |= holding_commits(G, node)
    elif attrs.get("type") == REPO:
        starts |= {v for _u, v, k in G.out_edges(node, keys=True) if k == CONTAINS}
    elif attrs.get("type") in (MODEL, AUDIT):
        starts.add(as_commit(G, node))  # what was built from its commit was built from it
    found = walk(G, starts, forward=True, kinds=DERIVATION)
    found -= {node, as_commit(G, node)} if attrs.get("type") in (MODEL, AUDIT) else {node}
    return _only(G, found, kinds)


def _only(G: nx.MultiDiGraph, nodes: set[str], kinds: Iterable[str] | None) -> set[str]:
    wanted = set(kinds) if kinds is not None else set(NODE_TYPES) - {REPO}
    return {n for n in nodes if G.nodes[n].get("type") in wanted}


def subgraph(G: nx.MultiDiGraph, node: str, direction: str = "both") -> nx.MultiDiGraph:
    """The node with its upstream, downstream or both, as a new graph (edges among them kept,
    ``contains`` edges and repo nodes left out)."""
    if direction not in ("upstream", "downstream", "both"):
        raise ValueError(f"direction must be upstream, downstream or both, not {direction!r}")
    keep = {node}
    if direction in ("upstream", "both"):
        keep |= upstream(G, node)
    if direction in ("downstream", "both"):
        keep |= downstream(G, node)
    H = nx.MultiDiGraph()
    H.graph.update(G.graph, center=node, direction=direction)
    for n in sorted(keep):
        H.add_node(n, **G.nodes[n])
    for u, v, k, d in G.edges(keep, keys=True, data=True):
        if v in keep and k != CONTAINS:
            H.add_edge(u, v, key=k, **d)
    return H


def data_commits(G: nx.MultiDiGraph, node: str) -> list[str]:
    """The data commits a model or output commit was built from directly (no history)."""
    return sorted(
        n for n in upstream(G, node, kinds=[COMMIT], history=False) if is_data_commit(G, n)
    )


def models(G: nx.MultiDiGraph) -> list[str]:
    return sorted(n for n, a in G.nodes(data=True) if a.get("type") == MODEL)


@dataclass(frozen=True)
class LineageView:
    """The graph ``tulip lineage`` shows: ``graph`` around ``center`` (None: the whole store);
    ``full`` is the whole store's graph it was cut from (OpenLineage events read it)."""

    graph: nx.MultiDiGraph
    center: str | None
    full: nx.MultiDiGraph

    @property
    def jobs(self) -> list[str]:
        return sorted(n for n, a in self.graph.nodes(data=True) if a.get("type") == "job")


def lineage_around(
    backend: Backend, ref: str | None = None, *, direction: str = "both", files: bool = True
) -> LineageView:
    """The lineage graph around ``ref`` (``REPO@REF`` or ``REPO@REF:/PATH``), or of the whole
    store when ``ref`` is None.

    ``direction`` is ``upstream`` (what it was built from), ``downstream`` (what was built
    from it) or ``both``. File versions are read only for the data repos the queries need;
    ``files=False`` leaves them out of the view.
    """
    if direction not in DIRECTIONS:
        raise LineageError(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
    G = build_graph(backend, include_files=False)
    center = None
    if ref:
        center = node_for_ref(backend, ref)
        if center.startswith("file:"):
            add_file_versions(G, backend, [parse_ref(ref).repo])
        require_node(G, center)
        add_file_versions(G, backend, data_repos_near(G, center))
    elif files:
        add_file_versions(G, backend, all_data_repos(G))
    H = subgraph(G, center, direction) if center else G
    if not files:
        H = H.copy()
        H.remove_nodes_from([n for n, a in list(H.nodes(data=True)) if a.get("type") == FILE])
    return LineageView(H, center, G)


def all_data_repos(G: nx.MultiDiGraph) -> list[str]:
    return sorted(
        {
            a["repo"]
            for n, a in G.nodes(data=True)
            if a.get("type") == COMMIT and a.get("kind") == DATA
        }
    )


def data_repos_near(G: nx.MultiDiGraph, center: str) -> list[str]:
    """Data repos whose history the queries around ``center`` need."""
    attrs = G.nodes[center]
    repos = {attrs["repo"]} if attrs.get("kind") == DATA or attrs.get("type") == FILE else set()
    for n in upstream(G, center, kinds=[COMMIT], history=False):
        if G.nodes[n].get("kind") == DATA:
            repos.add(G.nodes[n]["repo"])
    return sorted(repos)
