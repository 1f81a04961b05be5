"""The double's view of a CreatePipelineRequest: what pachd refuses, the effective spec it
returns, and the datums a pipeline's input yields (pfs globs, cross, union)."""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Callable

import betterproto
import grpc
from pachyderm_sdk.api import pps

from .state import Entry, Status, glob_regex, tree_entries

# pachd 2.8+ merges cluster defaults into every spec; these are its stock defaults
# (src/internal/pachd defaults: "createPipelineRequest": {"resourceRequests": ...}).
CLUSTER_DEFAULTS = {"resourceRequests": {"cpu": 1, "memory": "256Mi", "disk": "1Gi"}}


def _snake(key: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in key)


def unknown_fields(value: dict, cls: type[betterproto.Message], where: str = "") -> list[str]:
    """Keys protojson would refuse ("unknown field"), as dotted paths."""
    names = {f.name: f for f in dataclasses.fields(cls)}
    by_type = cls()._betterproto.cls_by_field
    bad = []
    for key, sub in value.items():
        name = key if key in names else _snake(key)
        if name == "from":
            name = "from_"
        if name not in names:
            bad.append(f"{where}{key}")
            continue
        meta = betterproto.FieldMetadata.get(names[name])
        if meta.proto_type != "message" or meta.map_types:
            continue
        sub_cls = by_type.get(name)
        if not (isinstance(sub_cls, type) and issubclass(sub_cls, betterproto.Message)):
            continue
        items = sub if isinstance(sub, list) else [sub]
        for i, item in enumerate(items):
            if isinstance(item, dict):
                suffix = f"[{i}]" if isinstance(sub, list) else ""
                bad += unknown_fields(item, sub_cls, f"{where}{key}{suffix}.")
    return bad


def validate(spec: dict) -> None:
    bad = unknown_fields(spec, pps.CreatePipelineRequest)
    if bad:
        raise Status(
            grpc.StatusCode.INVALID_ARGUMENT,
            f'proto: (line 1:2): unknown field "{bad[0]}"',
        )
    name = (spec.get("pipeline") or {}).get("name")
    if not name:
        raise Status(
            grpc.StatusCode.INVALID_ARGUMENT,
            "invalid pipeline spec: request.Pipeline cannot be nil",
        )
    if not spec.get("transform"):
        raise Status(
            grpc.StatusCode.INVALID_ARGUMENT, "invalid pipeline spec: must specify a transform"
        )
    if not spec.get("input") and not spec.get("spout"):
        raise Status(
            grpc.StatusCode.INVALID_ARGUMENT, "invalid pipeline spec: must specify an input"
        )
    for leaf in pfs_leaves(spec.get("input") or {}):
        if not leaf.get("glob"):
            raise Status(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"invalid pipeline spec: input {leaf.get('repo')} must specify a glob",
            )


def effective_json(spec: dict) -> str:
    """The user's spec with cluster defaults merged in, as pachd echoes it back."""
    merged = {**CLUSTER_DEFAULTS, **spec}
    return json.dumps(merged, sort_keys=True)


def pfs_leaves(node: dict) -> list[dict]:
    if node.get("pfs"):
        return [node["pfs"]]
    out = []
    for kind in ("cross", "union", "join", "group"):
        for child in node.get(kind) or []:
            out += pfs_leaves(child)
    return out


Group = list[tuple[str, object, Entry]]  # (input name, commit, matched entry)


def datum_groups(node: dict, leaf: Callable[[dict], tuple[str, object]]) -> list[Group]:
    """The datums of an input tree: a pfs glob's matches; cross is the product, union the
    concatenation. (join and group are treated as cross: no test needs more.)"""
    if node.get("pfs"):
        name, commit = leaf(node["pfs"])
        if commit is None:
            return []
        entries = tree_entries(commit.files)
        glob = node["pfs"]["glob"]
        if glob.strip() == "/":
            return [[(name, commit, e)] for e in entries if e.path == "/"]
        rx = glob_regex(glob.rstrip("/"))
        return [
            [(name, commit, e)] for e in entries if e.path != "/" and rx.match(e.path.rstrip("/"))
        ]
    kids = [datum_groups(c, leaf) for c in node.get("union") or []]
    if kids:
        return [g for k in kids for g in k]
    for kind in ("cross", "join", "group"):
        if node.get(kind):
            parts = [datum_groups(c, leaf) for c in node[kind]]
            return [[x for g in combo for x in g] for combo in itertools.product(*parts)]
    return []
