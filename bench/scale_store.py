"""The embedded store at 1k to 1M files (issue 12): time, peak RSS and growth exponent per op.

Tiny synthetic files (a few bytes each, unique content, 1,000 per folder) are put into one
repo at each N; then the same store is measured for each operation. Every operation runs in
a fresh worker process (``--worker``), so its peak RSS is its own; the idle worker's RSS
(import of the store, nothing done) is printed as that column's baseline.

Rows, per operation and N: seconds (baseline: the smallest N's time scaled linearly, so the
ratio is how far from linear growth it is) and peak RSS; per operation, the growth exponent
fitted over N by least squares on log-log (baseline 1.0, linear; goal <= 1.1). The 1% commit
also reports the metadata bytes it added against the store's metadata before it (goal
<= 5%).

    python bench/scale_store.py [--json] [--sizes 1000,10000,100000] [--keep DIR]

Adding an operation: write ``def op_NAME(ctx: Ctx) -> dict`` (time what it does; return at
least ``{"seconds": ...}``) and list it in ``OPERATIONS`` (store rows) or ``JOB_OPERATIONS``
(the engine's rows: a job over N datums, the job after adding 1%). They run in that order,
store rows first, on the same store per N; an operation may change the store (the 1% put
does), and later ones see that.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

REPO = "synthetic"
PER_FOLDER = 1000
DEFAULT_SIZES = (1_000, 10_000, 100_000)
NOT_1M = (
    "N=1M is not in the default run: on 2 shared cores and a slow disk the put of 100k tiny "
    "files alone takes minutes (mostly writing 100k blob files); add it with "
    "`--sizes 1000,10000,100000,1000000`."
)


def machine() -> str:
    return f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"


@dataclass
class Ctx:
    """What an operation gets: the store root, N, and a scratch directory of this N."""

    root: Path
    n: int
    scratch: Path

    def store(self):
        from pipelines.embedded.store import EmbeddedStore

        return EmbeddedStore(self.root, create=True)


def make_tree(dest: Path, start: int, count: int) -> Path:
    """``count`` tiny files numbered from ``start``, 1,000 to a folder."""
    for i in range(start, start + count):
        folder = dest / f"c{i // PER_FOLDER:05d}"
        if i % PER_FOLDER == 0 or i == start:
            folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i:07d}.txt").write_bytes(b"%d\n" % i)
    return dest


def metadata_bytes(store) -> int:
    """Bytes of live pages in the SQLite file, after folding the write-ahead log in."""
    conn = store.db.conn
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    return (pages - free) * conn.execute("PRAGMA page_size").fetchone()[0]


def head(store) -> str:
    return store.inspect_branch(REPO, "master").head


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    t = time.perf_counter()
    value = fn()
    return time.perf_counter() - t, value


# -- store operations ------------------------------------------------------------------------
def op_put(ctx: Ctx) -> dict:
    tree = make_tree(ctx.scratch / "tree", 0, ctx.n)
    s = ctx.store()
    s.create_repo(REPO)

    def put():
        with s.start_commit(REPO) as w:
            w.put_tree("/", tree)

    seconds, _ = timed(put)
    return {"seconds": seconds, "notes": f"{ctx.n} files of a few bytes, one commit"}


def op_put_1pct(ctx: Ctx) -> dict:
    more = max(1, ctx.n // 100)
    tree = make_tree(ctx.scratch / "more", ctx.n, more)
    s = ctx.store()
    before = metadata_bytes(s)

    def put():
        with s.start_commit(REPO) as w:
            w.put_tree("/", tree)

    seconds, _ = timed(put)
    added = metadata_bytes(s) - before
    return {
        "seconds": seconds,
        "metadata_added": added,
        "metadata_before": before,
        "notes": f"{more} new files on {ctx.n}",
    }


def op_list_folder(ctx: Ctx) -> dict:
    s = ctx.store()
    cid = head(s)
    seconds, files = timed(lambda: s.list_files(REPO, cid, "/c00000"))
    assert len(files) >= min(PER_FOLDER, ctx.n), len(files)
    return {"seconds": seconds, "notes": f"one folder of {len(files)} files"}


def op_inspect_commit(ctx: Ctx) -> dict:
    s = ctx.store()
    cid = head(s)
    seconds, info = timed(lambda: s.inspect_commit(REPO, cid))
    assert info.size_bytes > 0
    return {"seconds": seconds, "notes": "the head commit, with its size"}


def op_diff_file(ctx: Ctx) -> dict:
    s = ctx.store()
    c = s.inspect_commit(REPO, head(s))
    seconds, changes = timed(lambda: s.diff_files(REPO, c.id, c.parent))
    assert len(changes) == max(1, ctx.n // 100), len(changes)
    return {"seconds": seconds, "notes": "head (the 1% commit) against its parent, whole repo"}


def op_fsck(ctx: Ctx) -> dict:
    s = ctx.store()
    seconds, problems = timed(lambda: s.fsck())
    assert problems == [], problems[:3]
    return {"seconds": seconds, "notes": "metadata checks and every blob's presence"}


def op_lineage_build(ctx: Ctx) -> dict:
    from auditor.lineage import build

    s = ctx.store()
    seconds, graph = timed(lambda: build.build_graph(s))
    return {"seconds": seconds, "notes": f"with file versions; {graph.number_of_nodes()} nodes"}


def op_introduced_by(ctx: Ctx) -> dict:
    s = ctx.store()
    cid = head(s)
    paths = [f.path for f in s.walk_files(REPO, cid)]
    seconds, found = timed(lambda: s.introduced_by(REPO, cid, paths))
    assert len(found) == len(paths)
    return {"seconds": seconds, "notes": f"introduced_by of all {len(paths)} files (blame's query)"}


def op_blame(ctx: Ctx) -> dict:
    env = {**os.environ, "TULIP_ROOT": str(ctx.root), "TULIP_NO_AUTORUN": "1"}
    s = ctx.store()
    ref = f"{REPO}@{head(s)}"
    cmd = [sys.executable, "-m", "tulip.cli.main", "blame", ref, "-o", "json"]
    seconds, proc = timed(lambda: subprocess.run(cmd, env=env, capture_output=True, text=True))
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"tulip blame failed: {proc.stderr[-500:]}")
    return {"seconds": seconds, "notes": "`tulip blame` of the head data commit (a process)"}


# (name, function) in run order. The store rows:
OPERATIONS: list[tuple[str, Callable[[Ctx], dict]]] = [
    ("put", op_put),
    ("put of 1% more", op_put_1pct),
    ("list file of one folder", op_list_folder),
    ("inspect commit", op_inspect_commit),
    ("diff file", op_diff_file),
    ("fsck", op_fsck),
    ("lineage build", op_lineage_build),
    ("introduced_by", op_introduced_by),
    ("tulip blame", op_blame),
]
# The engine's rows (a job over N datums, the job after adding 1%): added by the scheduling
# work of issue 12, run after the store rows on the same store.
JOB_OPERATIONS: list[tuple[str, Callable[[Ctx], dict]]] = []


def all_operations() -> dict[str, Callable[[Ctx], dict]]:
    return dict(OPERATIONS + JOB_OPERATIONS)


# -- orchestration ---------------------------------------------------------------------------
def peak_rss_mib() -> float:
    """This process's peak, or a child's (``tulip blame`` runs as one) when that is higher."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return max(own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024


def worker(op: str, root: Path, n: int, scratch: Path) -> None:
    os.environ["TULIP_NO_AUTORUN"] = "1"
    if op == "idle":
        from pipelines.embedded.store import EmbeddedStore  # noqa: F401

        result: dict = {"seconds": 0.0}
    else:
        result = all_operations()[op](Ctx(root, n, scratch))
    result["peak_rss_mib"] = peak_rss_mib()
    print(json.dumps(result))


def run_worker(op: str, root: Path, n: int, scratch: Path) -> dict:
    proc = subprocess.run(
        [
            sys.executable,
            __file__,
            "--worker",
            op,
            "--root",
            str(root),
            "--n",
            str(n),
            "--scratch",
            str(scratch),
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{op} at N={n} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def exponent(ns: list[int], ts: list[float]) -> float:
    """Least-squares slope of log(t) over log(N)."""
    xs = [math.log(n) for n in ns]
    ys = [math.log(max(t, 1e-6)) for t in ts]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    num = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    den = sum((x - mx) ** 2 for x in xs)
    return num / den if den else float("nan")


def section(sizes: list[int], results: dict[str, dict[int, dict]], idle_mib: float) -> str:
    """The figures as one Markdown table: seconds and peak RSS per N, and the exponents."""
    head = " | ".join(f"N={n:,}" for n in sizes)
    lines = [
        f"Command: `python bench/scale_store.py --sizes {','.join(map(str, sizes))}` (via "
        f"`bench/run scale_store`). Seconds / peak RSS in MiB (idle worker: {idle_mib:.0f}); "
        "exponents fitted over N (goal <= 1.1).",
        *([] if 1_000_000 in sizes else ["", NOT_1M]),
        "",
        f"| operation | {head} | time exponent | RSS exponent |",
        "|---|" + "---|" * (len(sizes) + 2),
    ]
    for name, by_n in results.items():
        cells = [f"{by_n[n]['seconds']:.3g} s / {by_n[n]['peak_rss_mib']:.0f}" for n in sizes]
        te = exponent(sizes, [by_n[n]["seconds"] for n in sizes]) if len(sizes) > 1 else None
        re_ = (
            exponent(sizes, [max(by_n[n]["peak_rss_mib"] - idle_mib, 1.0) for n in sizes])
            if len(sizes) > 1
            else None
        )
        fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
        lines.append(f"| {name} | {' | '.join(cells)} | {fmt(te)} | {fmt(re_)} |")
        if "metadata_added" in by_n[sizes[0]]:
            shares = [
                f"{by_n[n]['metadata_added'] / by_n[n]['metadata_before']:.2%}" for n in sizes
            ]
            lines.append(
                f"| metadata added by the 1% commit / store metadata | {' | '.join(shares)} "
                "| goal <= 5% | |"
            )
    return "\n".join(lines)


def measure(sizes: list[int], work: Path, *, log=print) -> tuple[list[dict], str]:
    names = [name for name, _fn in OPERATIONS + JOB_OPERATIONS]
    results: dict[str, dict[int, dict]] = {name: {} for name in names}
    idle = run_worker("idle", work / "idle", 1, work)
    for n in sizes:
        root, scratch = work / f"store{n}", work / f"scratch{n}"
        scratch.mkdir(parents=True, exist_ok=True)
        for name in names:
            r = run_worker(name, root, n, scratch)
            results[name][n] = r
            log(f"N={n:>8} {name:<28} {r['seconds']:9.3f} s  {r['peak_rss_mib']:7.1f} MiB")
        shutil.rmtree(scratch, ignore_errors=True)
    rows = []
    small = sizes[0]
    for name in names:
        by_n = results[name]
        for n in sizes:
            r = by_n[n]
            linear = by_n[small]["seconds"] * n / small
            rows.append(
                {
                    "name": f"{name}, N={n}",
                    "figure": round(r["seconds"], 4),
                    "baseline": round(linear, 4),
                    "ratio": round(r["seconds"] / linear, 3) if linear else None,
                    "unit": "s",
                    "notes": f"{r.get('notes', '')}; peak RSS {r['peak_rss_mib']:.0f} MiB "
                    f"(idle worker {idle['peak_rss_mib']:.0f}); baseline: N={small} scaled linearly",
                }
            )
            if "metadata_added" in r:
                share = r["metadata_added"] / r["metadata_before"]
                rows.append(
                    {
                        "name": f"metadata added by the 1% commit, N={n}",
                        "figure": r["metadata_added"],
                        "baseline": r["metadata_before"],
                        "ratio": round(share, 4),
                        "unit": "bytes",
                        "notes": "baseline: the store's metadata before it (live SQLite pages); "
                        "goal ratio <= 0.05",
                    }
                )
        if len(sizes) > 1:
            for key, unit in (("seconds", "time"), ("peak_rss_mib", "peak RSS")):
                values = [by_n[n][key] for n in sizes]
                if key == "peak_rss_mib":
                    values = [max(v - idle["peak_rss_mib"], 1.0) for v in values]
                rows.append(
                    {
                        "name": f"{name}: growth exponent of {unit}",
                        "figure": round(exponent(sizes, values), 3),
                        "baseline": 1.0,
                        "ratio": round(exponent(sizes, values), 3),
                        "unit": "exponent",
                        "notes": f"fitted over N={','.join(map(str, sizes))}; goal <= 1.1"
                        + ("; RSS above the idle worker's" if key == "peak_rss_mib" else ""),
                    }
                )
    return rows, section(sizes, results, idle["peak_rss_mib"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)))
    ap.add_argument("--keep", type=Path, help="keep the stores in this directory")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--scratch", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker, args.root, args.n, args.scratch)
        return 0
    sizes = sorted(int(s) for s in args.sizes.split(","))
    work = args.keep or Path(tempfile.mkdtemp(prefix="tulip-scale-store-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        rows, md = measure(sizes, work, log=lambda m: print(m, file=sys.stderr, flush=True))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    for r in rows:
        r["machine"] = machine()
    if args.json:
        print(json.dumps({"rows": rows, "section": md}, indent=2))
    else:
        for r in rows:
            print(f"{r['name']:<60} {r['figure']:>12} {r['unit']:<9} ratio {r['ratio']}")
        print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
