"""What changed in the training data between two models: which files and classes came and
went, grouped by the data commit that made each change (``tulip lineage A --diff B``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from pipelines.backend import Backend
from pipelines.info import iso

from .graph import (
    REMOVED,
    as_commit,
    changes,
    is_data_commit,
    model_of,
    parent_of,
    require_files,
    require_node,
)
from .queries import data_commits, data_repos_near, live_files, node_for_ref


@dataclass
class CommitChanges:
    """What one data commit contributed to the difference between two models' data."""

    node: str
    repo: str
    id: str
    description: str
    started: float | None
    added: list[str] = field(default_factory=list)  # present in b, not in a
    removed: list[str] = field(default_factory=list)  # present in a, not in b
    modified: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "node": self.node,
            "repo": self.repo,
            "id": self.id,
            "description": self.description,
            "started": iso(self.started),
            "added": self.added,
            "removed": self.removed,
            "modified": self.modified,
        }


@dataclass
class TrainingDataDiff:
    a: str
    b: str
    data_a: list[str]
    data_b: list[str]
    added: list[str]  # "repo:/path"
    removed: list[str]
    modified: list[str]
    classes_added: list[str]
    classes_removed: list[str]
    class_counts_a: dict[str, int]
    class_counts_b: dict[str, int]
    commits: list[CommitChanges]

    def as_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "commits"}
        d["commits"] = [c.as_dict() for c in self.commits]
        return d


def _data_view(G: nx.MultiDiGraph, node: str) -> tuple[list[str], dict[str, tuple[str, str]]]:
    commit = as_commit(G, node)
    heads = [commit] if is_data_commit(G, commit) else data_commits(G, commit)
    files: dict[str, tuple[str, str]] = {}
    for h in heads:
        require_files(G, h)
        repo = G.nodes[h]["repo"]
        for path, (f, origin) in live_files(G, h).items():
            files[f"{repo}:{path}"] = (f, origin)
    return heads, files


def training_data_diff(G: nx.MultiDiGraph, model_a: str, model_b: str) -> TrainingDataDiff:
    """Which files and classes came and went between the data behind ``model_a`` and behind
    ``model_b``, grouped by the data commit that made each change (for files that went, the
    commit on b's history that deleted them, else the commit that had brought them to a)."""
    heads_a, files_a = _data_view(G, model_a)
    heads_b, files_b = _data_view(G, model_b)
    added = sorted(k for k in files_b if k not in files_a)
    removed = sorted(k for k in files_a if k not in files_b)
    modified = sorted(k for k in files_b if k in files_a and files_a[k][0] != files_b[k][0])
    groups: dict[str, CommitChanges] = {}

    def group(c: str) -> CommitChanges:
        if c not in groups:
            a = G.nodes[c]
            groups[c] = CommitChanges(
                c, a["repo"], a["commit"], a.get("description") or "", a.get("started")
            )
        return groups[c]

    for k in added:
        group(files_b[k][1]).added.append(k)
    for k in modified:
        group(files_b[k][1]).modified.append(k)
    removers = _removers(G, heads_b, {files_a[k][0] for k in removed})
    for k in removed:
        group(removers.get(files_a[k][0], files_a[k][1])).removed.append(k)

    def counts(files: dict[str, tuple[str, str]]) -> dict[str, int]:
        out: dict[str, int] = {}
        for key, (f, _o) in files.items():
            cls = G.nodes[f].get("cls")
            if cls is not None:
                name = f"{key.split(':', 1)[0]}:{cls}"
                out[name] = out.get(name, 0) + 1
        return dict(sorted(out.items()))

    ca, cb = counts(files_a), counts(files_b)
    return TrainingDataDiff(
        a=model_a,
        b=model_b,
        data_a=heads_a,
        data_b=heads_b,
        added=added,
        removed=removed,
        modified=modified,
        classes_added=sorted(set(cb) - set(ca)),
        classes_removed=sorted(set(ca) - set(cb)),
        class_counts_a=ca,
        class_counts_b=cb,
        commits=sorted(groups.values(), key=lambda g: (g.started or 0, g.id)),
    )


def _removers(G: nx.MultiDiGraph, heads: list[str], versions: set[str]) -> dict[str, str]:
    """For file versions gone by ``heads``: the commit on their history that removed each."""
    found: dict[str, str] = {}
    for h in heads:
        c: str | None = h
        while c is not None and len(found) < len(versions):
            for f in changes(G, c, REMOVED):
                if f in versions and f not in found:
                    found[f] = c
            c = parent_of(G, c)
    return found


def lineage_diff(backend: Backend, ref_a: str, ref_b: str) -> TrainingDataDiff:
    """The training-data diff from the model (or commit) ``ref_a`` to ``ref_b``."""
    from .build import add_file_versions, build_graph

    G = build_graph(backend, include_files=False)
    a, b = node_for_ref(backend, ref_a), node_for_ref(backend, ref_b)
    for node in (a, b):
        require_node(G, node)
        add_file_versions(G, backend, data_repos_near(G, node))
    return training_data_diff(G, model_of(G, a), model_of(G, b))
