"""Embed with 1 worker vs 2 workers, end to end through the embedded engine (issue 12, part 4).

A fresh store per run holds the shared flower photos; the shipped Embed spec (one datum per
image, ``datumBatching``) runs as a job with ``--parallelism 1`` and then ``2``, alternating,
best of ``--repeats``. The time is the whole job: workers start, load the backbone, embed,
and their records are committed. The embedding cache is off, so every image is embedded.
Goal: 2 workers >= 1.6x the images/s of 1 worker (on 2 cores).

    python bench/embed_parallel.py [--json] [--images 600] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
DATA = Path(os.environ.get("TULIP_SHARED", "/work/shared")) / "data" / "flower_photos"


def run(workers: int, paths: list[Path], arch: str) -> tuple[float, int]:
    """Seconds for one Embed job over ``paths`` with ``workers`` processes; datums processed."""
    from pipelines.embedded.store import EmbeddedStore
    from pipelines.runner import Runner

    with tempfile.TemporaryDirectory(prefix="embed_parallel") as tmp:
        store = EmbeddedStore(Path(tmp) / "store")
        store.create_repo("flower_photos")
        with store.start_commit("flower_photos") as w:
            for p in paths:
                w.put_file("/" + p.relative_to(DATA).as_posix(), p)
        spec = json.loads(resources.files("pipelines").joinpath("embed.json").read_text())
        spec["transform"]["cmd"][0] = sys.executable
        spec["transform"]["env"] = {**spec["transform"].get("env", {}), "ARCHITECTURE": arch}
        store.create_pipeline(spec)
        runner = Runner(store, parallelism=workers, progress=lambda _m: None, hooks=[], sinks=[])
        t = time.perf_counter()
        [job] = runner.run_until_idle()
        took = time.perf_counter() - t
        store.close()
    if job.state != "success":
        raise SystemExit(f"Embed with {workers} workers: {job.state}: {job.reason}")
    return took, job.data_processed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--images", type=int, default=600)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--architecture", default="mobilenet_1.0_224")
    args = ap.parse_args()
    os.environ["TULIP_NO_AUTORUN"] = "1"
    os.environ["TULIP_EMBED_CACHE"] = "0"  # embed every image, every run
    paths = sorted(p for p in DATA.rglob("*.jpg"))[: args.images]
    best: dict[int, float] = {}
    for _ in range(args.repeats):
        for workers in (1, 2):  # alternating, so both see the same machine
            took, n = run(workers, paths, args.architecture)
            best[workers] = min(best.get(workers, took), took)
            print(f"{workers} worker(s): {n} images in {took:.1f}s", file=sys.stderr)
    rate = {w: len(paths) / t for w, t in best.items()}
    load = os.getloadavg()[0]
    rows = [
        {
            "name": f"Embed job, 2 workers vs 1 [{args.architecture}]",
            "figure": round(rate[2], 2),
            "baseline": round(rate[1], 2),
            "ratio": round(rate[2] / rate[1], 3),
            "unit": "images/s",
            "notes": f"{len(paths)} photos, whole job (workers start, load the backbone, embed, "
            f"commit); cache off; best of {args.repeats} alternating; {os.cpu_count()} cores; "
            f"load average {load:.1f} at the end; goal ratio >= 1.6",
            "machine": f"{platform.machine()} {os.cpu_count()} cores, "
            f"Python {platform.python_version()}",
        }
    ]
    print(json.dumps(rows, indent=1) if args.json else rows[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
