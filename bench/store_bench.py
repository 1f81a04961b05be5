"""Foundation benchmarks (issue 2), each against a baseline measured in the same run.

1. `tulip put file -r` of the shared flower photos vs `cp -r` of the same tree.
2. A job over 600 one-image datums, then the same job after adding one image: it must
   process 1 datum and skip 600.
3. `tulip inspect commit -o json` (with transitive provenance) on a store of 1,000 commits,
   vs the same on a store of ~10 commits.

    python bench/store_bench.py [--json] [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = (
    Path(os.environ.get("TULIP_SHARED", HERE.parent.parent / "shared")) / "data" / "flower_photos"
)
TULIP = [sys.executable, "-m", "tulip.cli.main"]


def machine() -> str:
    return f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"


def tulip(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "TULIP_ROOT": str(root), "TULIP_NO_AUTORUN": "1"}
    return subprocess.run([*TULIP, *args, "-q"], env=env, capture_output=True, check=check)


def timed(fn, repeat: int = 1) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_put(data: Path, work: Path) -> dict:
    n = sum(1 for p in data.rglob("*") if p.is_file())
    size = sum(p.stat().st_size for p in data.rglob("*") if p.is_file())
    put_times, cp_times = [], []
    for i in range(3):  # interleaved, so both see the same machine
        target = work / f"cp{i}"
        t = time.perf_counter()
        subprocess.run(["cp", "-r", str(data), str(target)], check=True)
        os.sync()
        cp_times.append(time.perf_counter() - t)
        root = work / f"put{i}"
        tulip(root, "create", "repo", "flower_photos")
        t = time.perf_counter()
        tulip(root, "put", "file", "flower_photos@master:/", "-f", str(data), "-r")
        put_times.append(time.perf_counter() - t)
    put_s, cp_s = statistics.median(put_times), statistics.median(cp_times)
    return {
        "name": "put file -r flower_photos",
        "figure": round(put_s, 3),
        "baseline": round(cp_s, 3),
        "ratio": round(put_s / cp_s, 2),
        "unit": "s",
        "notes": f"{n} files, {size / 2**20:.1f} MiB; baseline cp -r + sync; median of 3; tulip includes "
        "process start, hashing, fsync and the SQLite commit",
    }


def bench_incremental(data: Path, work: Path) -> list[dict]:
    from pipelines.embedded.store import EmbeddedStore
    from pipelines.runner import Runner

    os.environ["TULIP_NO_AUTORUN"] = "1"
    store = EmbeddedStore(work / "incr")
    store.create_repo("flower_photos")
    images = sorted(p for p in data.rglob("*.jpg"))[:600]
    with store.start_commit("flower_photos") as w:
        for p in images:
            w.put_file("/" + p.relative_to(data).as_posix(), p)
    store.create_pipeline(
        {
            "pipeline": {"name": "Copy"},
            "transform": {"cmd": ["bash"], "stdin": ["cp -r /pfs/flower_photos/* /pfs/out/"]},
            "input": {"pfs": {"repo": "flower_photos", "glob": "/*/*"}},
        }
    )
    t = time.perf_counter()
    [first] = Runner(store).run_until_idle()
    first_s = time.perf_counter() - t
    extra = (
        next(p for p in sorted(data.rglob("*.jpg")) if p not in images[:600])
        if len(list(data.rglob("*.jpg"))) > 600
        else images[0]
    )
    with store.start_commit("flower_photos") as w:
        w.put_file("/daisy/added_" + extra.name, extra)
    t = time.perf_counter()
    [second] = Runner(store).run_until_idle()
    second_s = time.perf_counter() - t
    store.close()
    return [
        {
            "name": "job over 600 one-image datums",
            "figure": round(first_s, 2),
            "baseline": None,
            "ratio": None,
            "unit": "s",
            "notes": f"processed {first.data_processed}, skipped {first.data_skipped}, "
            "one bash process per datum",
        },
        {
            "name": "same job after adding 1 image",
            "figure": round(second_s, 2),
            "baseline": round(first_s, 2),
            "ratio": round(second_s / first_s, 3),
            "unit": "s",
            "notes": f"processed {second.data_processed}, skipped {second.data_skipped} (must be 1 and 600)",
        },
    ]


def _build_history(root: Path, commits: int) -> None:
    """A data repo with a pipeline on it: every data commit makes an output commit too."""
    from pipelines.embedded.store import EmbeddedStore
    from pipelines.runner import Runner

    store = EmbeddedStore(root)
    store.create_repo("data")
    store.create_pipeline(
        {
            "pipeline": {"name": "Derived"},
            "transform": {"cmd": ["bash"], "stdin": ["ls /pfs/data > /pfs/out/listing"]},
            "input": {"pfs": {"repo": "data", "glob": "/"}},
        }
    )
    for i in range(commits // 2):
        with store.start_commit("data") as w:
            w.put_bytes(f"/f{i % 50}.txt", f"{i}".encode())
    Runner(store).run_until_idle()
    store.close()


def bench_inspect(work: Path) -> dict:
    big, small = work / "big", work / "small"
    _build_history(big, 1000)
    _build_history(small, 10)

    def inspect(root):
        return lambda: tulip(root, "inspect", "commit", "Derived@master", "-o", "json")

    inspect(big)()
    inspect(small)()
    big_ms = timed(inspect(big), 7) * 1000
    small_ms = timed(inspect(small), 7) * 1000
    from pipelines.embedded.store import EmbeddedStore

    s = EmbeddedStore(big)
    n = s.db.execute("SELECT COUNT(*) FROM commits").fetchone()[0]
    c = s.resolve("Derived@master")
    api_ms = timed(lambda: s.provenance(s.inspect_commit("Derived", c.id)), 50) * 1000
    s.close()
    return {
        "name": "inspect commit -o json, 1,000-commit store",
        "figure": round(big_ms, 1),
        "baseline": round(small_ms, 1),
        "ratio": round(big_ms / small_ms, 2),
        "unit": "ms",
        "notes": f"{n} commits; baseline: same command on a 10-commit store; whole CLI process; "
        f"API call alone {api_ms:.2f} ms",
    }


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if not args.data.exists():
        print(f"no flower photos at {args.data}; pass --data", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="tulip-bench-"))
    try:
        rows = [
            bench_put(args.data, work),
            *bench_incremental(args.data, work),
            bench_inspect(work),
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for r in rows:
        r["machine"] = machine()
        r["bench"] = "store_bench"
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            base = (
                f" vs baseline {r['baseline']} {r['unit']} (ratio {r['ratio']})"
                if r["baseline"] is not None
                else ""
            )
            print(f"{r['name']}: {r['figure']} {r['unit']}{base}\n    {r['notes']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
