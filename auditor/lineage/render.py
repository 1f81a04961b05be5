"""The lineage graph for people and machines: node-link JSON (``-o json``), a canonical form
(backend parity tests), Graphviz DOT (``-o dot``) and text (the table ``tulip lineage`` prints,
and the training-data diff)."""

from __future__ import annotations

import datetime as _dt
import json
import re
from collections.abc import Iterable
from typing import Any

import networkx as nx

from pipelines.info import iso

from .graph import (
    AUDIT,
    COMMIT,
    CONTAINS,
    EXPORT,
    FILE,
    JOB,
    MODEL,
    NODE_TYPES,
    PARENT,
    PIPELINE,
    REMOVED,
    REPO,
    REVIEW,
)

_TIME_KEYS = ("created", "started", "finished")


def _jsonable(attrs: dict) -> dict:
    out = {}
    for k, v in attrs.items():
        if k in _TIME_KEYS and isinstance(v, int | float):
            v = iso(v)
        out[k] = v
    return out


def to_node_link(G: nx.MultiDiGraph) -> dict:
    """Node-link JSON, written here so its shape does not move with networkx versions:
    ``{"directed", "multigraph", "graph", "nodes": [{"id", ...}], "links": [{"source",
    "target", "key", "kind"}]}``, nodes and links sorted, times as ISO-8601 UTC strings."""
    return {
        "directed": True,
        "multigraph": True,
        "graph": dict(G.graph),
        "nodes": [{"id": n, **_jsonable(G.nodes[n])} for n in sorted(G.nodes)],
        "links": [
            {"source": u, "target": v, "key": k, **d}
            for u, v, k, d in sorted(G.edges(keys=True, data=True), key=lambda e: e[:3])
        ],
    }


def from_node_link(data: dict) -> nx.MultiDiGraph:
    """The inverse of ``to_node_link`` (times stay ISO strings)."""
    G = nx.MultiDiGraph()
    G.graph.update(data.get("graph") or {})
    for n in data["nodes"]:
        attrs = dict(n)
        G.add_node(attrs.pop("id"), **attrs)
    for link in data["links"]:
        attrs = dict(link)
        u, v, k = attrs.pop("source"), attrs.pop("target"), attrs.pop("key")
        G.add_edge(u, v, key=k, **attrs)
    return G


TIMES = ("created", "started", "finished", "time")
_ID = re.compile(r"\b[0-9a-f]{32}\b")


def canonical(G: nx.MultiDiGraph, *, ignore: Iterable[str] = (), relabel: bool = False) -> dict:
    """A comparable form of the graph: ``to_node_link`` minus the attributes in ``ignore``
    (``TIMES`` for the clocks). The graph's ``backend`` name is always left out.

    Two backends reading the same store give equal forms. With ``relabel``, every 32-hex ID
    (commits, commit sets, jobs), wherever it appears, becomes ``<n>`` in order of first use,
    and labels are left out, so two stores that lived the same history under different IDs
    compare equal too.
    """
    skip = set(ignore) | ({"label"} if relabel else set())  # labels show shortened IDs
    data = to_node_link(G)
    data["graph"] = {k: v for k, v in data["graph"].items() if k not in skip | {"backend"}}
    data["nodes"] = [{k: v for k, v in n.items() if k not in skip} for n in data["nodes"]]
    if not relabel:
        return data
    first: dict[str, tuple] = {}
    for n, a in G.nodes(data=True):
        when = a.get("started") or a.get("created") or float("inf")
        for m in _ID.findall(n):
            first[m] = min(first.get(m, (float("inf"), "")), (when, n))
    alias = {m: f"<{i}>" for i, m in enumerate(sorted(first, key=lambda m: (first[m], m)))}
    text = _ID.sub(lambda m: alias.get(m.group(0), m.group(0)), json.dumps(data, sort_keys=True))
    data = json.loads(text)
    data["nodes"].sort(key=lambda n: n["id"])
    data["links"].sort(key=lambda e: (e["source"], e["target"], e["key"]))
    return data


# shape, style, fill colour
_DOT_STYLE = {
    REPO: ("folder", "filled", "#eeeeee"),
    COMMIT: ("box", "rounded", None),
    PIPELINE: ("component", "filled", "#dde8ff"),
    JOB: ("ellipse", "filled", "#f4f4f4"),
    FILE: ("note", None, None),
    MODEL: ("box3d", "filled", "#d9f2d9"),
    AUDIT: ("octagon", "filled", "#fff3c4"),
    EXPORT: ("cds", "filled", "#e6d9f2"),
    REVIEW: ("hexagon", "filled", "#d9eef2"),
}
_FAIL_FILL = "#f8c9c9"


def dot_quote(text: Any, *, limit: int = 80) -> str:
    """A DOT double-quoted string that shows ``text`` literally, whatever it holds.

    Backslashes are doubled (so ``\\N``, ``\\G``, ``\\l`` cannot become Graphviz escapes), quotes
    escaped, line breaks and other control characters turned to spaces, and long text cut.
    A quoted string is never read as an HTML-like label, so ``<script>`` stays text.
    """
    s = "" if text is None else str(text)
    s = "".join(" " if (ord(ch) < 32 or ord(ch) == 127) else ch for ch in s)
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(G: nx.MultiDiGraph, *, name: str = "lineage") -> str:
    """Graphviz DOT, commits grouped in one cluster per repo, failures shaded red."""
    lines = [f"digraph {dot_quote(name)} {{", "  rankdir=LR;", '  node [fontname="Helvetica"];']
    by_repo: dict[str, list[str]] = {}
    loose: list[str] = []
    for n in sorted(G.nodes):
        a = G.nodes[n]
        if a.get("type") == COMMIT and a.get("repo"):
            by_repo.setdefault(a["repo"], []).append(n)
        else:
            loose.append(n)

    def node_line(n: str, indent: str) -> str:
        a = G.nodes[n]
        shape, style, fill = _DOT_STYLE.get(a.get("type"), ("box", None, None))
        if (
            a.get("error")
            or a.get("state") in ("failure", "unrunnable", "killed")
            or a.get("verdict") == "fail"
        ):
            style = "filled" if style in (None, "filled") else f"{style},filled"
            fill = _FAIL_FILL
        attrs = [f"label={dot_quote(a.get('label', n))}", f"shape={shape}"]
        if style:
            attrs.append(f"style={dot_quote(style)}")
        if fill:
            attrs.append(f"fillcolor={dot_quote(fill)}")
        tooltip = a.get("description") or a.get("reason") or a.get("error") or n
        attrs.append(f"tooltip={dot_quote(tooltip, limit=200)}")
        return f"{indent}{dot_quote(n, limit=10_000)} [{', '.join(attrs)}];"

    for i, (repo, nodes) in enumerate(sorted(by_repo.items())):
        lines.append(f"  subgraph cluster_{i} {{")
        lines.append(f"    label={dot_quote(repo)};")
        lines.extend(node_line(n, "    ") for n in nodes)
        lines.append("  }")
    lines.extend(node_line(n, "  ") for n in loose)
    for u, v, k in sorted(G.edges(keys=True)):
        if k == CONTAINS:
            continue
        extra = ", style=dashed" if k in (PARENT, REMOVED) else ""
        lines.append(
            f"  {dot_quote(u, limit=10_000)} -> {dot_quote(v, limit=10_000)} "
            f"[label={dot_quote(k)}, fontsize=8{extra}];"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def describe(attrs: dict) -> str:
    """One line of detail for a node, for tables and reports."""
    t = attrs.get("type")
    if t == COMMIT:
        parts = [attrs.get("kind") or "", attrs.get("branch") or ""]
        if attrs.get("error"):
            parts.append(f"error: {attrs['error']}")
        elif attrs.get("description"):
            parts.append(repr(attrs["description"]))
        if attrs.get("files_added") or attrs.get("files_deleted") or attrs.get("files_modified"):
            parts.append(
                f"+{attrs.get('files_added', 0)} ~{attrs.get('files_modified', 0)} "
                f"-{attrs.get('files_deleted', 0)} files"
            )
        return " ".join(p for p in parts if p)
    if t == JOB:
        s = f"{attrs.get('state')} {attrs.get('data_processed', 0)}/{attrs.get('data_total', 0)} datums"
        return s + (f": {attrs['reason']}" if attrs.get("reason") else "")
    if t == PIPELINE:
        return f"spec commit {str(attrs.get('spec_commit'))[:8]}"
    if t == FILE:
        return f"{attrs.get('size')} bytes, sha256 {str(attrs.get('sha256'))[:16]}"
    if t == MODEL:
        return f"{attrs.get('path')} ({attrs.get('size')} bytes)"
    if t == AUDIT:
        checks = ", ".join(f"{k} {v}" for k, v in (attrs.get("by_check") or {}).items())
        return f"{attrs.get('verdict')}: {attrs.get('findings')} findings" + (
            f" ({checks})" if checks else ""
        )
    if t == REVIEW:
        counts = ", ".join(f"{k} {v}" for k, v in (attrs.get("counts") or {}).items() if v)
        fix = attrs.get("fix") or {}
        return f"by {attrs.get('by')}: {counts or 'no changes'}" + (
            f" -> {fix.get('repo')}@{str(fix.get('commit'))[:8]}" if fix else ""
        )
    if t == EXPORT:
        forced = " FORCED" if attrs.get("forced") else ""
        return f"{', '.join(attrs.get('targets') or [])}{forced}"
    if t == REPO:
        return attrs.get("repo_type") or ""
    return ""


def grouped(G: nx.MultiDiGraph, nodes: Iterable[str]) -> dict[str, list[str]]:
    """Nodes by type, in the order of ``NODE_TYPES``, each group sorted by time then ID."""
    groups: dict[str, list[str]] = {t: [] for t in NODE_TYPES}
    for n in nodes:
        groups.setdefault(G.nodes[n].get("type", "other"), []).append(n)

    def key(n: str) -> tuple:
        return (G.nodes[n].get("started") or G.nodes[n].get("created") or 0, n)

    return {t: sorted(ns, key=key) for t, ns in groups.items() if ns}


def _when(ts: float | None) -> str:
    """Local time, as the other tables print it."""
    if ts is None:
        return "-"
    return _dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _table(headers: list[str], rows: list[tuple]) -> list[str]:
    cells = [[str(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*headers).rstrip()] + [fmt.format(*r).rstrip() for r in cells]


def to_text(G: nx.MultiDiGraph, center: str | None = None, *, folders_over: int = 20) -> str:
    """Nodes grouped by type, one line each (``*`` marks ``center``); more than
    ``folders_over`` file versions are summed up per folder."""
    groups = grouped(G, [n for n in G.nodes if G.nodes[n].get("type") != REPO])
    if not groups:
        return ""
    blocks = []
    for kind, nodes in groups.items():
        lines = [f"{kind.upper()}S ({len(nodes)})"]
        if kind == FILE and len(nodes) > folders_over:
            by_dir: dict[str, list[str]] = {}
            for n in nodes:
                a = G.nodes[n]
                by_dir.setdefault(f"{a['repo']}:{a['path'].rsplit('/', 1)[0]}/", []).append(n)
            lines += _table(
                ["  FOLDER", "FILE VERSIONS", "BYTES"],
                [
                    (f"  {d}", len(ns), sum(G.nodes[n].get("size") or 0 for n in ns))
                    for d, ns in sorted(by_dir.items())
                ],
            )
        else:
            lines += _table(
                ["  NODE", "WHEN", "DETAILS"],
                [
                    (
                        ("* " if n == center else "  ") + n,
                        _when(G.nodes[n].get("started") or G.nodes[n].get("created")),
                        describe(G.nodes[n]),
                    )
                    for n in nodes
                ],
            )
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def diff_text(diff) -> str:
    """A ``TrainingDataDiff`` as text: the totals, then each data commit's changes."""
    lines = [
        f"A: {diff.a}  (data: {', '.join(diff.data_a) or '-'})",
        f"B: {diff.b}  (data: {', '.join(diff.data_b) or '-'})",
        f"{len(diff.added)} files added, {len(diff.removed)} removed, "
        f"{len(diff.modified)} changed from A to B",
    ]
    if diff.classes_added:
        lines.append("classes added: " + ", ".join(diff.classes_added))
    if diff.classes_removed:
        lines.append("classes removed: " + ", ".join(diff.classes_removed))
    for c in diff.commits:
        desc = f"  {c.description!r}" if c.description else ""
        lines += ["", f"{c.repo}@{c.id}  {_when(c.started)}{desc}"]
        for label, items in (("+", c.added), ("-", c.removed), ("~", c.modified)):
            lines += [f"  {label} {item}" for item in items]
    return "\n".join(lines) + "\n"
