"""The lineage page's picture: the upstream and downstream of one commit, simplified to read.

The graph comes from ``auditor.lineage`` (every repo, commit, pipeline version, job, file
version, model, audit and export). A picture of all of it is unreadable, so: file versions
become a count on the commit that introduced them, a job folds into the commit it produced
(its state shown there), a spec commit is shown as its pipeline version, and a model or audit
node folds into its commit. Every remaining commit links to its commit page.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import networkx as nx

from pipelines.layout import SPEC_SUFFIX

from .graph_layout import Layout, layered_layout

MAX_NODES = 400
FAILED_STATES = frozenset({"failure", "unrunnable", "killed"})


@dataclass
class NodeView:
    id: str
    type: str  # commit, pipeline, export
    label: str
    detail: str
    repo: str | None = None
    commit: str | None = None
    role: str | None = None  # data, output, model, audit
    status: str = "ok"  # ok, fail, warn, running, center
    files: int = 0

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class LineageView:
    center: str
    nodes: dict[str, NodeView]
    edges: list[tuple[str, str, str]]
    layout: Layout
    hidden: Counter = field(default_factory=Counter)
    truncated: int = 0

    def as_dict(self) -> dict:
        return {
            "center": self.center,
            "nodes": [n.as_dict() for n in self.nodes.values()],
            "edges": [{"source": u, "target": v, "kind": k} for u, v, k in self.edges],
            "folded": dict(self.hidden),
            "truncated": self.truncated,
        }


def store_graph(backend) -> nx.MultiDiGraph:
    from auditor.lineage.build import build_graph

    return build_graph(backend)


def commit_lineage(G: nx.MultiDiGraph, repo: str, commit_id: str) -> LineageView:
    """Upstream and downstream of ``commit:<repo>@<id>`` in the store graph."""
    from auditor.lineage.graph import commit_node
    from auditor.lineage.queries import subgraph

    center = commit_node(repo, commit_id)
    H = subgraph(G, center, "both")
    # The pipeline versions that made the outputs shown: their spec commits are inputs of the
    # outputs, but neither upstream nor downstream of the commit itself.
    for n in list(H.nodes):
        if H.nodes[n].get("type") != "commit" or H.nodes[n].get("kind") == "data":
            continue
        for u, _v, k in G.in_edges(n, keys=True):
            if k != "provenance" or G.nodes[u].get("kind") != "spec":
                continue
            H.add_node(u, **G.nodes[u])
            H.add_edge(u, n, key=k, kind=k)
            for _u, pipe, k2 in G.out_edges(u, keys=True):
                if k2 == "version_of":
                    H.add_node(pipe, **G.nodes[pipe])
                    H.add_edge(u, pipe, key=k2, kind=k2)
    return simplify(H, center)


def from_node_link(data: dict, center: str | None = None) -> LineageView | None:
    """For the standalone report: node-link JSON (``auditor.lineage.render.to_node_link``)."""
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list):
        return None
    G = nx.MultiDiGraph()
    G.graph.update(data.get("graph") or {})
    for n in data["nodes"]:
        if isinstance(n, dict) and isinstance(n.get("id"), str):
            G.add_node(n["id"], **{k: v for k, v in n.items() if k != "id"})
    for link in data.get("links") or data.get("edges") or []:
        if not isinstance(link, dict):
            continue
        u, v = link.get("source"), link.get("target")
        if u in G and v in G:
            kind = link.get("kind") or link.get("key") or "provenance"
            G.add_edge(u, v, key=kind, kind=kind)
    center = center or G.graph.get("center") or ""
    return simplify(G, center)


def _repo_and_commit(node: str, attrs: dict) -> tuple[str | None, str | None]:
    """From the attributes, else from the node ID ``commit:<repo>@<id>``."""
    repo, commit = attrs.get("repo"), attrs.get("commit")
    if (not repo or not commit) and node.startswith("commit:") and "@" in node:
        repo, _, commit = node[len("commit:") :].rpartition("@")
    return repo, commit


def _commit_status(attrs: dict) -> str:
    if attrs.get("error"):
        return "fail"
    if attrs.get("finished") is None and attrs.get("started") is not None:
        return "running"
    return "ok"


def simplify(H: nx.MultiDiGraph, center: str, *, max_nodes: int = MAX_NODES) -> LineageView:
    hidden: Counter = Counter()
    alias: dict[str, str] = {}  # folded node -> the node it is drawn as
    views: dict[str, NodeView] = {}
    files_by_commit: Counter = Counter()
    for n, a in H.nodes(data=True):
        t = a.get("type")
        if t == "commit":
            if a.get("kind") == "spec":
                continue  # drawn as its pipeline version, below
            repo, cid = _repo_and_commit(n, a)
            role = "data" if a.get("kind") == "data" else "output"
            desc = a.get("description") or ""
            detail = a.get("error") or desc or (a.get("branch") or "")
            views[n] = NodeView(
                n, "commit", a.get("label") or n, str(detail)[:200], repo, cid, role,
                _commit_status(a),
            )  # fmt: skip
    for n, a in H.nodes(data=True):
        t = a.get("type")
        if t == "commit" and a.get("kind") == "spec":
            pipe = next((v for _u, v, k in H.out_edges(n, keys=True) if k == "version_of"), None)
            if pipe is not None:
                alias[n] = pipe
            else:
                repo, cid = _repo_and_commit(n, a)
                views[n] = NodeView(
                    n, "pipeline", a.get("label") or n, "pipeline spec", repo, cid, "spec"
                )
        elif t == "pipeline":
            views[n] = NodeView(
                n, "pipeline", a.get("label") or n, f"spec commit {str(a.get('spec_commit'))[:8]}",
                f"{a.get('name')}{SPEC_SUFFIX}", a.get("spec_commit"), "spec",
            )  # fmt: skip
        elif t in ("model", "audit"):
            owner = next(
                (u for u, _v, k in H.in_edges(n, keys=True) if k in ("is_model", "is_audit")), None
            )
            if owner in views:
                alias[n] = owner
                v = views[owner]
                v.role = t
                if t == "audit":
                    verdict = str(a.get("verdict") or "")
                    v.detail = verdict
                    if verdict == "fail":
                        v.status = "fail"
                    elif verdict == "warn" and v.status == "ok":
                        v.status = "warn"
                else:
                    v.detail = str(a.get("path") or "").lstrip("/")
            hidden[t] += 1
        elif t == "job":
            out = next((v for _u, v, k in H.out_edges(n, keys=True) if k == "produced"), None)
            if out in views:
                state = a.get("state")
                if state in FAILED_STATES:
                    views[out].status = "fail"
                    views[out].detail = f"job {state}: {a.get('reason') or ''}"[:200]
                elif state in ("created", "running") and views[out].status == "ok":
                    views[out].status = "running"
                alias[n] = out
            hidden["job"] += 1
        elif t == "file":
            hidden["file"] += 1
            for u, _v, k in H.in_edges(n, keys=True):
                if k == "introduced":
                    files_by_commit[u] += 1
        elif t == "export":
            views[n] = NodeView(n, "export", a.get("label") or n, ", ".join(a.get("targets") or []),
                                status="warn" if a.get("forced") else "ok")  # fmt: skip
        elif t == "repo":
            hidden["repo"] += 1
    for c, count in files_by_commit.items():
        if c in views:
            views[c].files = count
    if center in views:
        views[center].status = "center" if views[center].status == "ok" else views[center].status
    center_drawn = alias.get(center, center)

    edges = set()
    for u, v, k in H.edges(keys=True):
        if k in ("contains", "introduced", "removed", "is_model", "is_audit", "version_of"):
            continue
        a, b = alias.get(u, u), alias.get(v, v)
        if a in views and b in views and a != b:
            edges.add((a, b, "parent" if k == "parent" else "provenance"))
    truncated = 0
    if len(views) > max_nodes:
        # Keep the nodes nearest the centre.
        U = nx.Graph()
        U.add_nodes_from(views)
        U.add_edges_from((a, b) for a, b, _k in edges)
        dist = nx.single_source_shortest_path_length(U, center_drawn) if center_drawn in U else {}
        keep = set(sorted(views, key=lambda n: (dist.get(n, 1 << 30), n))[:max_nodes])
        truncated = len(views) - len(keep)
        views = {n: v for n, v in views.items() if n in keep}
        edges = {e for e in edges if e[0] in keep and e[1] in keep}
    edge_list = sorted(edges)
    layout = layered_layout(list(views), edge_list)
    return LineageView(center_drawn, views, edge_list, layout, hidden, truncated)
