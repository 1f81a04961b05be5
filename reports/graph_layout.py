"""A layered left-to-right layout of a lineage graph, for inline SVG.

Sugiyama in miniature: layers by longest path from the sources (so every edge points right),
order within a layer by a few barycenter sweeps (fewer crossings), then coordinates. Done
once on the server, so the page (and the standalone report) needs no graph library.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

NODE_W = 200
NODE_H = 40
GAP_X = 70
GAP_Y = 16
PAD = 20


@dataclass(frozen=True)
class Box:
    id: str
    x: float
    y: float
    w: float
    h: float
    layer: int


@dataclass(frozen=True)
class Curve:
    source: str
    target: str
    kind: str
    d: str  # SVG path data


@dataclass
class Layout:
    width: float
    height: float
    boxes: dict[str, Box] = field(default_factory=dict)
    curves: list[Curve] = field(default_factory=list)


def _layers(nodes: list[str], edges: list[tuple[str, str, str]]) -> dict[str, int]:
    preds: dict[str, set[str]] = defaultdict(set)
    succs: dict[str, set[str]] = defaultdict(set)
    for u, v, _k in edges:
        if u != v:
            preds[v].add(u)
            succs[u].add(v)
    indegree = {n: len(preds[n]) for n in nodes}
    ready = sorted(n for n in nodes if indegree[n] == 0)
    layer = dict.fromkeys(nodes, 0)
    done = set()
    while ready:
        n = ready.pop(0)
        done.add(n)
        for m in sorted(succs[n]):
            layer[m] = max(layer[m], layer[n] + 1)
            indegree[m] -= 1
            if indegree[m] == 0:
                ready.append(m)
    # A cycle (should not happen in provenance): leave its nodes after their placed inputs.
    for n in nodes:
        if n not in done:
            placed = [layer[p] for p in preds[n] if p in done]
            layer[n] = max(placed, default=0) + 1
    return layer


def layered_layout(
    nodes: list[str],
    edges: list[tuple[str, str, str]],
    *,
    node_w: int = NODE_W,
    node_h: int = NODE_H,
    sweeps: int = 4,
) -> Layout:
    """Boxes for ``nodes`` and curves for ``edges`` (source, target, kind)."""
    nodes = sorted(set(nodes))
    edges = [(u, v, k) for u, v, k in edges if u in set(nodes) and v in set(nodes) and u != v]
    layer_of = _layers(nodes, edges)
    layers: dict[int, list[str]] = defaultdict(list)
    for n in nodes:
        layers[layer_of[n]].append(n)
    preds: dict[str, list[str]] = defaultdict(list)
    succs: dict[str, list[str]] = defaultdict(list)
    for u, v, _k in edges:
        preds[v].append(u)
        succs[u].append(v)

    def position(layer: list[str]) -> dict[str, int]:
        return {n: i for i, n in enumerate(layer)}

    depth = max(layers, default=0)
    for sweep in range(sweeps):
        downward = sweep % 2 == 0
        order = range(1, depth + 1) if downward else range(depth - 1, -1, -1)
        for li in order:
            ref = position(layers[li - 1] if downward else layers[li + 1])
            neighbours = preds if downward else succs

            def barycenter(n: str, ref=ref, neighbours=neighbours) -> float:
                pos = [ref[m] for m in neighbours[n] if m in ref]
                return sum(pos) / len(pos) if pos else float("inf")

            current = position(layers[li])
            layers[li].sort(key=lambda n, c=current: (barycenter(n), c[n]))

    tallest = max((len(v) for v in layers.values()), default=1)
    height = PAD * 2 + tallest * (node_h + GAP_Y) - GAP_Y
    boxes: dict[str, Box] = {}
    for li, members in layers.items():
        offset = (tallest - len(members)) * (node_h + GAP_Y) / 2
        for i, n in enumerate(members):
            boxes[n] = Box(
                n,
                PAD + li * (node_w + GAP_X),
                round(PAD + offset + i * (node_h + GAP_Y), 1),
                node_w,
                node_h,
                li,
            )
    curves = []
    for u, v, k in edges:
        a, b = boxes[u], boxes[v]
        x1, y1 = a.x + a.w, a.y + a.h / 2
        x2, y2 = b.x, b.y + b.h / 2
        if x2 <= x1:  # same or earlier layer (cycle fallback): loop around
            x2, y2 = b.x + b.w / 2, b.y
        mid = (x1 + x2) / 2
        curves.append(
            Curve(
                u,
                v,
                k,
                f"M{x1:.1f},{y1:.1f} C{mid:.1f},{y1:.1f} {mid:.1f},{y2:.1f} {x2:.1f},{y2:.1f}",
            )
        )
    width = PAD * 2 + (depth + 1) * (node_w + GAP_X) - GAP_X
    return Layout(width, height, boxes, curves)
