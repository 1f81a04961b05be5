"""From a pipeline's input spec and its input commits to datums, as Pachyderm computes them.

A glob is matched against every path of an input commit, files and directories alike; each
match is a datum holding that path and everything under it. ``cross`` takes the product of
its children's datums, ``union`` their concatenation, and ``join`` the product of the datums
whose ``joinOn`` capture groups agree. A datum's hash covers its input names, matched paths,
file paths and content hashes, and the pipeline's salt: an unchanged hash means unchanged work.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import re
from collections import defaultdict
from dataclasses import dataclass

from .errors import InvalidSpec


@dataclass(frozen=True)
class InputFile:
    path: str
    hash: str
    size: int


@dataclass(frozen=True)
class DatumPart:
    """The slice of one pfs input that a datum sees."""

    input: str  # the input's name: it is mounted at /pfs/<input>
    repo: str
    commit: str
    matched: str  # the path the glob matched
    files: tuple[InputFile, ...]
    join_key: str | None = None


@dataclass(frozen=True)
class Datum:
    parts: tuple[DatumPart, ...]

    def hash(self, salt: str) -> str:
        h = hashlib.sha256()
        h.update(salt.encode())
        for part in sorted(self.parts, key=lambda p: (p.input, p.matched)):
            h.update(b"\0input\0" + part.input.encode() + b"\0" + part.matched.encode())
            for f in part.files:
                h.update(b"\0" + f.path.encode() + b"\0" + f.hash.encode())
        return h.hexdigest()

    @property
    def paths(self) -> list[str]:
        return [f"{p.input}:{p.matched}" for p in self.parts]


def glob_regex(glob: str) -> re.Pattern[str]:
    """Pachyderm's glob syntax: ``*`` and ``?`` stay within one path segment, ``**`` crosses."""
    if glob in ("/", ""):
        return re.compile(r"^(?:/)$")
    out, i = [], 0
    while i < len(glob):
        c = glob[i]
        if glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            end = glob.find("]", i + 1)
            if end == -1:
                raise InvalidSpec(f"glob {glob!r} has an unclosed '['")
            body = glob[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end + 1
        elif c in "()":
            out.append(c)  # capture groups, referenced as $1, $2... by joinOn
            i += 1
        elif c == "{":
            end = glob.find("}", i + 1)
            if end == -1:
                raise InvalidSpec(f"glob {glob!r} has an unclosed '{{'")
            alts = glob[i + 1 : end].split(",")
            out.append("(?:" + "|".join(re.escape(a) for a in alts) + ")")
            i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    pattern = "".join(out).rstrip("/") or "/"
    return re.compile("^(?:" + pattern + ")$")


def _glob_depth(glob: str) -> int | None:
    """How many path segments every match of ``glob`` has, or None when ``**`` crosses them."""
    if "**" in glob or any("/" in alt for alt in re.findall(r"\{([^}]*)\}", glob)):
        return None
    body = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "x", glob)  # '/' cannot hide inside [] or {}
    return len([s for s in body.strip("/").split("/") if s])


def match_glob(
    glob: str, files: list[InputFile]
) -> list[tuple[str, tuple[InputFile, ...], re.Match]]:
    """Each path matched by ``glob`` with the files at or under it, in path order.

    One pass: the glob is compiled once, the candidate paths (only those of the glob's depth,
    unless it has ``**``) are matched in bulk, and each match's files are a slice of the
    sorted file list found by bisection, so N files cost O(N log N), not O(N^2).
    """
    if not files:
        return []
    regex = glob_regex(glob)
    by_path = sorted(files, key=lambda f: f.path)
    if regex.pattern == "^(?:/)$":
        m = regex.match("/")
        assert m is not None
        return [("/", tuple(by_path), m)]
    depth = _glob_depth(glob)
    nodes: set[str] = set()
    for f in by_path:
        parts = f.path.strip("/").split("/")
        if depth is not None:
            if len(parts) >= depth:
                nodes.add("/" + "/".join(parts[:depth]))
        else:
            for i in range(1, len(parts) + 1):
                nodes.add("/" + "/".join(parts[:i]))
    paths = [f.path for f in by_path]
    matches = []
    for node in sorted(nodes):
        m = regex.match(node)
        if m:
            exact = bisect.bisect_left(paths, node)
            lo, hi = bisect.bisect_left(paths, node + "/"), bisect.bisect_left(paths, node + "0")
            under = by_path[lo:hi]
            if exact < len(paths) and paths[exact] == node:
                under = [by_path[exact], *under]
            matches.append((node, tuple(under), m))
    return matches


def _join_key(join_on: str, m: re.Match | None) -> str:
    """``joinOn`` with ``$1``, ``$2``... replaced by the glob's wildcard captures."""
    if m is None:
        return ""

    def group(g: re.Match) -> str:
        idx = int(g.group(1))
        return (m.group(idx) or "") if 0 < idx <= m.re.groups else ""

    return re.sub(r"\$(\d+)", group, join_on)


def enumerate_datums(
    node: dict, commits: dict[str, tuple[str, str, list[InputFile]]]
) -> list[Datum]:
    """Datums of an input tree.

    ``commits`` maps each pfs input name to (repo, commit id, files); an input with no
    commit yet is absent and contributes no datums (so a cross with it is empty).
    """
    if node.get("pfs") is not None:
        p = node["pfs"]
        name = p.get("name") or p["repo"]
        if name not in commits:
            return []
        repo, commit, files = commits[name]
        glob = p["glob"]
        result = []
        for matched, under, m in match_glob(glob, files):
            key = _join_key(p["joinOn"], m) if p.get("joinOn") else None
            result.append(Datum((DatumPart(name, repo, commit, matched, under, key),)))
        return result
    if node.get("cross") is not None:
        children = [enumerate_datums(c, commits) for c in node["cross"]]
        return [
            Datum(tuple(itertools.chain.from_iterable(d.parts for d in combo)))
            for combo in itertools.product(*children)
        ]
    if node.get("union") is not None:
        return [d for c in node["union"] for d in enumerate_datums(c, commits)]
    if node.get("join") is not None:
        return _join(node["join"], commits)
    raise InvalidSpec(
        f"input kind {sorted(k for k, v in node.items() if v)} is not supported locally"
    )


def _join(children_spec: list[dict], commits) -> list[Datum]:
    """Datums whose ``joinOn`` keys agree, one from each input, as Pachyderm joins them.

    A key missing from some inputs still makes a datum (of the inputs that have it) when every
    input that has it sets ``outerJoin``: that is how a spec makes an input optional.
    """
    outer = [bool((c.get("pfs") or {}).get("outerJoin")) for c in children_spec]
    keyed: list[dict[str, list[Datum]]] = []
    for c in children_spec:
        groups: dict[str, list[Datum]] = defaultdict(list)
        for d in enumerate_datums(c, commits):
            groups[d.parts[0].join_key or ""].append(d)
        keyed.append(groups)
    out = []
    for k in sorted(set().union(*(set(g) for g in keyed))):
        present = [i for i, g in enumerate(keyed) if k in g]
        if len(present) < len(keyed) and not all(outer[i] for i in present):
            continue
        for combo in itertools.product(*(keyed[i][k] for i in present)):
            out.append(Datum(tuple(itertools.chain.from_iterable(d.parts for d in combo))))
    return out
