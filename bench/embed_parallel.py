"""Embed with 1 worker vs 2 workers, end to end through the embedded engine (issue 12, part 4).

A fresh store per run holds the shared flower photos; the shipped Embed spec (one datum per
image, ``datumBatching``) runs as a job with ``--parallelism 1`` and then ``2``, alternating,
best of ``--repeats``. The time is the whole job: workers start, load the backbone, embed,
and their records are committed. The embedding cache is off, so every image is embedded.
Goal: 2 workers >= 1.6x the images/s of 1 worker (on 2 cores).

One worker alone already gets every core's threads (TensorFlow's intra-op pool and the JPEG
decoders), so the bench also runs one worker held to one core's threads, as a Pachyderm
worker with a 1-CPU request is, and says how many cores each configuration kept busy (CPU
seconds of the worker processes over the wall clock).

Each job pays a fixed start (a worker imports TensorFlow and loads the backbone: seconds, the
same at 600 images as at 1M), so each configuration also runs on a third of the images: the
marginal rate, (600 - 200) images over the difference of the two times, is the rate a long job
settles at, which is what sizing 1M images needs.

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


def run(
    workers: int, paths: list[Path], arch: str, threads: int | None = None
) -> tuple[float, float, int]:
    """Seconds for one Embed job over ``paths`` with ``workers`` processes (each held to
    ``threads`` threads if given); cores kept busy; datums processed."""
    import resource

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
        env = {**spec["transform"].get("env", {}), "ARCHITECTURE": arch}
        if threads:
            env |= {"TF_NUM_INTRAOP_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
        spec["transform"]["env"] = env
        store.create_pipeline(spec)
        runner = Runner(store, parallelism=workers, progress=lambda _m: None, hooks=[], sinks=[])
        cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        [job] = runner.run_until_idle()
        took = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        busy = (after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime) / took
        store.close()
    if job.state != "success":
        raise SystemExit(f"Embed with {workers} workers: {job.state}: {job.reason}")
    return took, busy, job.data_processed


CEILING = """
import os, sys, time
import numpy as np
a = np.random.default_rng(0).random((1000, 1000), dtype=np.float32)
t, n = time.perf_counter(), 0
while time.perf_counter() - t < float(sys.argv[1]):
    a @ a
    n += 1
print(n / (time.perf_counter() - t))
"""


def matmul_scaling(seconds: float = 8.0) -> float:
    """How much faster two processes of single-threaded float32 matrix products go than one:
    this machine's own ceiling for a compute-bound job split over two workers (two vCPUs that
    share one core's arithmetic units scale far below 2)."""
    import subprocess

    env = {
        **os.environ,
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }

    def start() -> subprocess.Popen:
        cmd = [sys.executable, "-c", CEILING, str(seconds)]
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)

    one = float(start().communicate()[0])
    pair = [start(), start()]
    two = sum(float(p.communicate()[0]) for p in pair)
    return two / one


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
    configs = {"1": (1, None), "1 (one core)": (1, 1), "2": (2, None)}
    small = paths[: len(paths) // 3]
    best: dict[tuple[str, int], tuple[float, float]] = {}
    for _ in range(args.repeats):
        for name, (workers, threads) in configs.items():  # alternating: all see one machine
            for subset in (small, paths):
                took, busy, n = run(workers, subset, args.architecture, threads)
                key = (name, len(subset))
                if key not in best or took < best[key][0]:
                    best[key] = (took, busy)
                print(
                    f"{name} worker(s): {n} images in {took:.1f}s, {busy:.2f} cores busy",
                    file=sys.stderr,
                )
    ceiling = matmul_scaling()
    print(f"two single-threaded matmul processes vs one: x{ceiling:.2f}", file=sys.stderr)
    rate = {w: len(paths) / best[w, len(paths)][0] for w in configs}
    busy = {w: best[w, len(paths)][1] for w in configs}
    extra = len(paths) - len(small)
    marginal = {w: extra / (best[w, len(paths)][0] - best[w, len(small)][0]) for w in configs}
    load = os.getloadavg()[0]
    machine = f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"
    common = (
        f"{len(paths)} photos, whole job (workers start, load the backbone, embed, commit); "
        f"cache off; best of {args.repeats} alternating; {os.cpu_count()} cores; load average "
        f"{load:.1f} at the end"
    )
    rows = [
        {
            "name": f"Embed job, 2 workers vs 1 [{args.architecture}]",
            "figure": round(rate["2"], 2),
            "baseline": round(rate["1"], 2),
            "ratio": round(rate["2"] / rate["1"], 3),
            "unit": "images/s",
            "notes": f"{common}; cores busy {busy['2']:.2f} vs {busy['1']:.2f} (one worker "
            "already runs TensorFlow on every core); goal ratio >= 1.6",
            "machine": machine,
        },
        {
            "name": f"Embed job, 2 workers vs 1 worker on one core [{args.architecture}]",
            "figure": round(rate["2"], 2),
            "baseline": round(rate["1 (one core)"], 2),
            "ratio": round(rate["2"] / rate["1 (one core)"], 3),
            "unit": "images/s",
            "notes": f"{common}; the baseline worker holds TF_NUM_INTRAOP_THREADS = "
            f"OMP_NUM_THREADS = 1 (a 1-CPU Pachyderm worker), cores busy "
            f"{busy['1 (one core)']:.2f}; goal ratio >= 1.6",
            "machine": machine,
        },
        {
            "name": f"Embed, marginal rate, 2 workers vs 1 [{args.architecture}]",
            "figure": round(marginal["2"], 2),
            "baseline": round(marginal["1"], 2),
            "ratio": round(marginal["2"] / marginal["1"], 3),
            "unit": "images/s",
            "notes": f"({len(paths)} - {len(small)}) images over the difference of the whole-job "
            f"times at {len(paths)} and {len(small)} images: the workers' start-up cancels out; "
            f"one worker on one core: {marginal['1 (one core)']:.2f} images/s; load average "
            f"{load:.1f} at the end; goal ratio >= 1.6",
            "machine": machine,
        },
        {
            "name": "this machine's ceiling: 2 processes of float32 matrix products vs 1",
            "figure": round(ceiling, 3),
            "baseline": 2.0,
            "ratio": round(ceiling / 2, 3),
            "unit": "x",
            "notes": "single-threaded 1000x1000 float32 matmuls for 8 s, one process, then two "
            "at once; a compute-bound job split over 2 workers cannot scale past this here "
            "(baseline: 2 independent cores)",
            "machine": machine,
        },
    ]
    print(json.dumps(rows, indent=1) if args.json else "\n".join(map(str, rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
