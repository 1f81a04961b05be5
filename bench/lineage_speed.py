"""Lineage graph speed (issue 4): build time, and queries against naive provenance walking.

Two stores, each made here with the real embedded store and engine: flower_photos with ~600
files, and three tiny shell stages (Train writes model.keras, Audit writes audit.json,
Convert writes optimized_graph.lite) that run on every data commit.

* small: ~20 data commits (the seed's scale);
* large: 1,000 data commits (each adds a file or two, changes or deletes one now and then).

For each store it prints the time to build the graph (with and without file versions) and,
for three questions, the graph query against the same answer got naively through the
backend, measured in the same run:

1. upstream of the newest model (data commits and the file versions behind it): graph
   ``upstream`` vs ``provenance()`` + ``walk_files`` + ``introduced_by`` of every file;
2. blast radius of an early data commit (models built from data it introduced): graph
   ``downstream`` vs ``provenance()`` of every output commit, checking each for the commit
   or a later one still holding one of its files (``walk_files`` per data commit);
3. training data diff between the first and the newest model: graph ``training_data_diff``
   vs ``diff_files`` + ``introduced_by``.

    python bench/lineage_speed.py [--json] [--large-commits N] [--files N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

CLASSES = ("daisy", "dandelion", "roses", "sunflowers", "tulips")


def machine() -> str:
    return f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"


def timed(fn, repeat: int = 3):
    """Median seconds over ``repeat`` runs, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def _spec(name: str, cmd: str, inputs: list[tuple[str, str]]) -> dict:
    node = (
        {"pfs": {"repo": inputs[0][0], "glob": inputs[0][1]}}
        if len(inputs) == 1
        else {"cross": [{"pfs": {"repo": r, "glob": g}} for r, g in inputs]}
    )
    return {
        "pipeline": {"name": name},
        "transform": {"image": "bench", "cmd": ["sh", "-c", cmd]},
        "input": node,
    }


def make_store(root: Path, *, commits: int, files: int) -> dict:
    """A store of ``commits`` data commits; returns facts the queries need."""
    from pipelines.embedded.store import EmbeddedStore
    from pipelines.runner import Runner

    os.environ["TULIP_NO_AUTORUN"] = "1"
    s = EmbeddedStore(root)
    s.create_repo("flower_photos")
    for spec in (
        _spec(
            "Train",
            "sha256sum /pfs/flower_photos/manifest.txt > /pfs/out/model.keras",
            [("flower_photos", "/manifest.txt")],
        ),
        _spec(
            "Audit",
            'printf \'{"schema": "tulip.audit/v1", "verdict": "pass", "findings": []}\' '
            "> /pfs/out/audit.json",
            [("flower_photos", "/manifest.txt")],
        ),
        _spec(
            "Convert",
            "cp /pfs/Train/model.keras /pfs/out/optimized_graph.lite",
            [("Train", "/"), ("Audit", "/")],
        ),
    ):
        s.create_pipeline(spec)
    Runner(s).run_until_idle()
    ids = []
    n = 0
    live: list[str] = []
    for i in range(commits):
        with s.start_commit("flower_photos", description=f"commit {i}") as w:
            if i == 0:
                for k in range(files):
                    path = f"/{CLASSES[k % len(CLASSES)]}/{k}.jpg"
                    w.put_bytes(path, f"image {k}".encode())
                    live.append(path)
                    n += 1
            else:
                for _ in range(1 + i % 2):
                    path = f"/{CLASSES[n % len(CLASSES)]}/{n}.jpg"
                    w.put_bytes(path, f"image {n}".encode())
                    live.append(path)
                    n += 1
                if i % 7 == 0:
                    w.put_bytes(live[i % len(live)], f"retaken {i}".encode())
                if i % 11 == 0:
                    w.delete(live.pop((i * 13) % len(live)))
            w.put_bytes("/manifest.txt", f"{i}\n".encode())
        ids.append(w.id)
        Runner(s).run_until_idle()
    s.close()
    return {"root": root, "data": ids}


def naive_upstream(s, model_commit: str) -> tuple[set[str], set[tuple[str, str, str]]]:
    c = s.inspect_commit("Convert", model_commit)
    data = [r for r in s.provenance(c) if r.repo == "flower_photos"]
    commits, versions = set(), set()
    for r in data:
        files = {f.path: f.hash for f in s.walk_files(r.repo, r.id)}
        intro = s.introduced_by(r.repo, r.id, files)
        commits.add(r.id)
        commits.update(intro.values())
        versions.update((r.repo, p, h) for p, h in files.items())
    return commits, versions


def naive_downstream(s, data_commit: str) -> set[str]:
    """Models whose data still holds a file version ``data_commit`` introduced."""
    c = s.inspect_commit("flower_photos", data_commit)
    parent = {f.path: f.hash for f in s.walk_files("flower_photos", c.parent)} if c.parent else {}
    mine = {
        (f.path, f.hash)
        for f in s.walk_files("flower_photos", data_commit)
        if parent.get(f.path) != f.hash
    }
    holds: dict[str, bool] = {}
    found = set()
    for repo in ("Train", "Convert"):
        for oc in s.list_commits(repo):
            if oc.error:
                continue
            for r in s.provenance(oc):
                if r.repo != "flower_photos":
                    continue
                if r.id not in holds:
                    files = {(f.path, f.hash) for f in s.walk_files(r.repo, r.id)}
                    holds[r.id] = bool(mine & files)
                if holds[r.id]:
                    found.add(f"model:{repo}@{oc.id}")
    return found


def naive_diff(s, a: str, b: str) -> tuple[list[str], dict[str, str]]:
    ca = next(r for r in s.provenance(s.inspect_commit("Train", a)) if r.repo == "flower_photos")
    cb = next(r for r in s.provenance(s.inspect_commit("Train", b)) if r.repo == "flower_photos")
    changes = s.diff_files("flower_photos", cb.id, ca.id)
    added = [ch.path for ch in changes if ch.change in ("added", "modified")]
    return [ch.path for ch in changes], s.introduced_by("flower_photos", cb.id, added)


def bench_store(label: str, facts: dict) -> list[dict]:
    from auditor.lineage import build, diff, graph, queries, render
    from pipelines.embedded import manifests
    from pipelines.embedded.store import EmbeddedStore

    s = EmbeddedStore(facts["root"])
    rows = []
    try:
        n_commits = s.db.execute("SELECT COUNT(*) FROM commits").fetchone()[0]
        n_files = manifests.count(s.db.conn, "flower_photos", facts["data"][-1])
        build_s, G = timed(lambda: build.build_graph(s), repeat=3 if label == "small" else 1)
        bare_s, _ = timed(lambda: build.build_graph(s, include_files=False), repeat=3)
        what = f"{n_commits} commits in all, {len(facts['data'])} data commits, {n_files} files at head"
        rows.append(
            {
                "name": f"lineage build, {label} store",
                "figure": round(build_s * 1000, 1),
                "baseline": round(bare_s * 1000, 1),
                "ratio": round(build_s / bare_s, 2),
                "unit": "ms",
                "notes": f"{what}; {G.number_of_nodes()} nodes, {G.number_of_edges()} edges; "
                "baseline: the same graph without file versions",
            }
        )

        def files_by(method: str):
            def run():
                H = build.build_graph(s, include_files=False)
                build.add_file_versions(H, s, ["flower_photos"], method=method)
                return H

            return run

        hist_s, H1 = timed(files_by("history"), repeat=3 if label == "small" else 1)
        walk_s, H2 = timed(files_by("walk"), repeat=3 if label == "small" else 1)
        assert render.canonical(H1) == render.canonical(H2), "the two file-history methods differ"
        rows.append(
            {
                "name": f"lineage build with file versions via find_commits, {label} store",
                "figure": round(hist_s * 1000, 1),
                "baseline": round(walk_s * 1000, 1),
                "ratio": round(walk_s / hist_s, 2),
                "unit": "ms",
                "notes": "baseline: one walk_files per data commit diffed against its parent; "
                "same graph; ratio = walk/history",
            }
        )
        newest = next(c.id for c in s.list_commits("Convert") if not c.error)
        model = graph.model_node("Convert", newest)
        q_s, up = timed(
            lambda: queries.upstream(G, model, kinds=[graph.COMMIT, graph.FILE]), repeat=5
        )
        n_s, (commits, versions) = timed(lambda: naive_upstream(s, newest), repeat=3)
        graph_commits = {
            G.nodes[n]["commit"]
            for n in up
            if G.nodes[n]["type"] == graph.COMMIT and G.nodes[n].get("repo") == "flower_photos"
        }
        graph_files = {
            (G.nodes[n]["repo"], G.nodes[n]["path"], G.nodes[n]["sha256"])
            for n in up
            if G.nodes[n]["type"] == graph.FILE
        }
        assert graph_files == versions, "graph and naive upstream files differ"
        assert graph_commits == commits, "graph and naive upstream commits differ"
        rows.append(
            {
                "name": f"upstream of the newest model, {label} store",
                "figure": round(q_s * 1000, 2),
                "baseline": round(n_s * 1000, 2),
                "ratio": round(n_s / q_s, 1),
                "unit": "ms",
                "notes": f"{len(graph_commits)} data commits, {len(graph_files)} file versions; "
                "baseline: provenance() + walk_files + introduced_by; ratio = naive/graph; "
                f"graph build amortised after {build_s / max(n_s - q_s, 1e-9):.1f} queries",
            }
        )
        early = facts["data"][len(facts["data"]) // 10]
        q_s, down = timed(
            lambda: queries.downstream(
                G, graph.commit_node("flower_photos", early), kinds=[graph.MODEL]
            ),
            repeat=5,
        )
        n_s, naive = timed(lambda: naive_downstream(s, early), repeat=1)
        assert down == naive, f"graph and naive blast radius differ: {len(down)} vs {len(naive)}"
        rows.append(
            {
                "name": f"blast radius of an early data commit, {label} store",
                "figure": round(q_s * 1000, 2),
                "baseline": round(n_s * 1000, 2),
                "ratio": round(n_s / q_s, 1),
                "unit": "ms",
                "notes": f"{len(down)} models touched; baseline: provenance() of every output "
                "commit + walk_files of each data commit; ratio = naive/graph",
            }
        )
        trains = [c.id for c in s.list_commits("Train") if not c.error and c.id in facts["data"]]
        first, last = trains[-1], trains[0]
        q_s, diff = timed(
            lambda: diff.training_data_diff(
                G, graph.model_node("Train", first), graph.model_node("Train", last)
            ),
            repeat=5,
        )
        n_s, (paths, _intro) = timed(lambda: naive_diff(s, first, last), repeat=3)
        graph_paths = {k.split(":", 1)[1] for k in diff.added + diff.removed + diff.modified}
        assert graph_paths == set(paths), "graph and naive diff differ"
        rows.append(
            {
                "name": f"training data diff first→newest model, {label} store",
                "figure": round(q_s * 1000, 2),
                "baseline": round(n_s * 1000, 2),
                "ratio": round(n_s / q_s, 1),
                "unit": "ms",
                "notes": f"{len(graph_paths)} paths changed over {len(diff.commits)} commits; "
                "baseline: diff_files + introduced_by; ratio = naive/graph",
            }
        )
    finally:
        s.close()
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--small-commits", type=int, default=20)
    ap.add_argument("--large-commits", type=int, default=1000)
    ap.add_argument("--files", type=int, default=600)
    ap.add_argument(
        "--keep", type=Path, help="build the stores here and keep them (reused if present)"
    )
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="tulip-lineage-bench-"))
    rows = []
    try:
        for label, commits in (("small", args.small_commits), ("large", args.large_commits)):
            root = work / f"{label}-{commits}-{args.files}"
            facts_file = root.with_suffix(".json")
            if facts_file.exists():
                facts = json.loads(facts_file.read_text())
                facts["root"] = Path(facts["root"])
            else:
                shutil.rmtree(root, ignore_errors=True)
                t = time.perf_counter()
                facts = make_store(root, commits=commits, files=args.files)
                print(f"made the {label} store in {time.perf_counter() - t:.0f}s", file=sys.stderr)
                facts_file.write_text(json.dumps({**facts, "root": str(root)}))
            rows += bench_store(label, facts)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    for r in rows:
        r["machine"] = machine()
        r["bench"] = "lineage_speed"
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            print(
                f"{r['name']}: {r['figure']} {r['unit']} vs baseline {r['baseline']} {r['unit']} "
                f"(ratio {r['ratio']})\n    {r['notes']}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
