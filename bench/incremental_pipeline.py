"""Incremental cost of the real pipelines (issue 3): add 50 images to a repo of 550.

Embed must compute only the 50 new embeddings, and Train must reuse the rest. The baseline is
the first run on the same machine, in the same process: the ratio of the second Embed job to
the first should be near 50/550.

    python bench/incremental_pipeline.py [--architecture mobilenet_1.0_224] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = (
    Path(os.environ.get("TULIP_SHARED", HERE.parent.parent / "shared")) / "data" / "flower_photos"
)


def spec(name: str, architecture: str) -> dict:
    s = json.loads((HERE.parent / "pipelines" / f"{name}.json").read_text())
    if "env" in s["transform"]:
        s["transform"]["env"]["ARCHITECTURE"] = architecture
    return s


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--architecture", default="mobilenet_1.0_224")
    ap.add_argument("--added", type=int, default=50)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    os.environ["TULIP_NO_AUTORUN"] = "1"
    from pipelines.embedded.store import EmbeddedStore
    from pipelines.runner import Runner

    images = sorted(p for p in DATA.rglob("*.jpg"))
    held = set(images[:: max(1, len(images) // args.added)][: args.added])
    work = Path(tempfile.mkdtemp(prefix="tulip-incr-"))
    try:
        store = EmbeddedStore(work / "store")
        store.create_repo("flower_photos")
        with store.start_commit("flower_photos") as w:
            for p in images:
                if p not in held:
                    w.put_file("/" + p.relative_to(DATA).as_posix(), p)
        for name in ("embed", "train"):
            store.create_pipeline(spec(name, args.architecture))
        t = time.perf_counter()
        first = {j.pipeline: j for j in Runner(store).run_until_idle()}
        first_s = time.perf_counter() - t
        with store.start_commit("flower_photos", description="add 50") as w:
            for p in sorted(held):
                w.put_file("/" + p.relative_to(DATA).as_posix(), p)
        t = time.perf_counter()
        second = {j.pipeline: j for j in Runner(store).run_until_idle()}
        second_s = time.perf_counter() - t
        store.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def dur(j):
        return round(j.finished - j.started, 2)

    e1, e2, t1, t2 = first["Embed"], second["Embed"], first["Train"], second["Train"]
    machine = f"{platform.machine()} {os.cpu_count()} cores"
    rows = [
        {
            "name": f"Embed job after adding {args.added} images to {len(images) - len(held)}",
            "figure": dur(e2),
            "baseline": dur(e1),
            "ratio": round(dur(e2) / dur(e1), 3),
            "unit": "s",
            "notes": f"{args.architecture}; second run processed {e2.data_processed}, skipped {e2.data_skipped} "
            f"(first: processed {e1.data_processed}); ideal ratio {args.added / (len(images) - len(held)):.3f}",
            "machine": machine,
        },
        {
            "name": "Train job, second run (reuses every embedding)",
            "figure": dur(t2),
            "baseline": dur(t1),
            "ratio": round(dur(t2) / dur(t1), 3),
            "unit": "s",
            "notes": "Train reads all records; it recomputes no embedding",
            "machine": machine,
        },
        {
            "name": "whole second run (Embed + Train)",
            "figure": round(second_s, 1),
            "baseline": round(first_s, 1),
            "ratio": round(second_s / first_s, 3),
            "unit": "s",
            "notes": "wall time, both runs in one process",
            "machine": machine,
        },
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            print(
                f"{r['name']}: {r['figure']} {r['unit']} vs {r['baseline']} (ratio {r['ratio']})\n    {r['notes']}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
