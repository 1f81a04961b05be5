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
from typing import NamedTuple

from .errors import InvalidSpec


# Plain named tuples, not dataclasses: a scheduling pass builds one of each per file and per
# datum, and a tuple is built several times faster.
class InputFile(NamedTuple):
    path: str
    hash: str
    size: int


class DatumPart(NamedTuple):
    """The slice of one pfs input that a datum sees."""

    input: str  # the input's name: it is mounted at /pfs/<input>
    repo: str
    commit: str
    matched: str  # the path the glob matched
    files: tuple[InputFile, ...]
    join_key: str | None = None


class Datum(NamedTuple):
    parts: tuple[DatumPart, ...]

    def hash(self, salt: str) -> str:
        """Stable across versions: a changed digest would make every store rerun every datum."""
        parts = self.parts
        if len(parts) == 1 and len(parts[0].files) == 1:  # the usual datum: one file
            p, f = parts[0], parts[0].files[0]
            text = salt + "\0input\0" + p.input + "\0" + p.matched + "\0" + f.path + "\0" + f.hash
            return hashlib.sha256(text.encode()).hexdigest()
        if len(parts) > 1:
            parts = tuple(sorted(parts, key=lambda p: (p.input, p.matched)))
        text = salt + "".join(
            "\0input\0"
            + p.input
            + "\0"
            + p.matched
            + "".join("\0" + f.path + "\0" + f.hash for f in p.files)
            for p in parts
        )
        return hashlib.sha256(text.encode()).hexdigest()

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
    paths = [f.path for f in by_path]
    if depth is not None and all(p.count("/") <= depth for p in paths):
        # No file lies below the glob's depth (as /*/* on class/image.jpg): each match is a
        # file and holds just itself, so no node set and no bisection are needed.
        return [
            (path, (f,), m)
            for f, path in zip(by_path, paths, strict=True)
            if path.count("/") == depth and (m := regex.match(path))
        ]
    nodes: set[str] = set()
    for path in paths:
        segments = path.count("/")  # paths are absolute and have no trailing slash
        if depth is None:
            parts = path.split("/")
            nodes.update("/".join(parts[:i]) for i in range(2, len(parts) + 1))
        elif segments == depth:
            nodes.add(path)  # the usual case: a glob such as /*/* matching files themselves
        elif segments > depth:
            nodes.add("/".join(path.split("/", depth + 1)[: depth + 1]))
    matches = []
    lo = 0
    for node in sorted(nodes):
        m = regex.match(node)
        if m:
            exact = bisect.bisect_left(paths, node, lo)
            is_file = exact < len(paths) and paths[exact] == node
            start = bisect.bisect_left(paths, node + "/", exact)  # '/c1.txt' sorts before '/c1/'
            if start < len(paths) and paths[start].startswith(node + "/"):
                hi = bisect.bisect_left(paths, node + "0", start)
                under = by_path[start:hi]
                under = (by_path[exact], *under) if is_file else tuple(under)
            else:
                under = (by_path[exact],) if is_file else ()
            matches.append((node, under, m))
            lo = exact
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
        join_on = p.get("joinOn")
        return [
            Datum(
                (
                    DatumPart(
                        name,
                        repo,
                        commit,
                        matched,
                        under,
                        _join_key(join_on, m) if join_on else None,
                    ),
                )
            )
            for matched, under, m in match_glob(p["glob"], files)
        ]
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
