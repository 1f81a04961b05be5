"""How long `tulip demo` takes (issue 7), and what round 2 costs next to round 1.

The bar: the demo on the 600 shared photos with mobilenet_0.25_224 in under 5 minutes on 2
cores. The same-run baseline is round 1: round 2 adds only /orchids, so it re-embeds only them.

    python bench/demo_time.py [--architecture mobilenet_0.25_224] [--data DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = (
    Path(os.environ.get("TULIP_SHARED", HERE.parent.parent / "shared")) / "data" / "flower_photos"
)
BAR_SECONDS = 300


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--architecture", default="mobilenet_0.25_224")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="tulip-demo-bench-") as tmp:
        t = time.perf_counter()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "tulip.cli.main",
                "demo",
                "--workdir",
                str(Path(tmp) / "demo"),
                "--data",
                str(args.data),
                "--architecture",
                args.architecture,
                "-o",
                "json",
                "-q",
            ],
            capture_output=True,
            text=True,
            cwd=tmp,
        )
        wall = time.perf_counter() - t
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        return 1
    result = json.loads(proc.stdout)
    r1, r2, fix = result["rounds"]
    images = sum(1 for _ in args.data.rglob("*.jpg"))
    machine = f"{platform.machine()} {os.cpu_count()} cores"
    rows = [
        {
            "name": f"tulip demo, {images} photos, {args.architecture}",
            "figure": round(wall, 1),
            "baseline": BAR_SECONDS,
            "ratio": round(wall / BAR_SECONDS, 3),
            "unit": "s",
            "notes": f"baseline is the 5-minute bar, not a measurement; verdicts {r1['verdict']}, {r2['verdict']}, "
            f"{fix['verdict']}",
            "machine": machine,
        },
        {
            "name": "round 2 (add /orchids) vs round 1",
            "figure": r2["seconds"],
            "baseline": r1["seconds"],
            "ratio": round(r2["seconds"] / r1["seconds"], 3),
            "unit": "s",
            "notes": f"round 2 embedded {r2['embed_processed']} new images and reused {r2['embed_skipped']}",
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
