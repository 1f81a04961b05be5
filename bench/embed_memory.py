"""Peak RSS of the Embed stage as the number of images grows: it must stay flat.

Each count runs ``python -m training.embed`` in a fresh process over a datum manifest of that
many images (one datum per image, as the engine runs it), and reads the process' peak RSS from
``wait4``. Images are the 600 shared photos repeated under different names. The baseline is
the peak at the smallest count, measured in the same run; a ratio near 1.0 means memory does
not grow with the number of images.

    python bench/embed_memory.py [--counts 500,1000,2000,3000] [--architecture A] [--json]
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

DATA = Path(os.environ.get("TULIP_SHARED", "/work/shared")) / "data" / "flower_photos"


def write_manifest(photos: list[Path], count: int, work: Path) -> Path:
    """``count`` datums, cycling through ``photos`` under new names (``<stem>_<k>.jpg``)."""
    lines = []
    for i in range(count):
        src = photos[i % len(photos)]
        k = i // len(photos)
        rel = Path(src.parent.name) / f"{src.stem}_{k}{src.suffix}"
        datum_in = work / "in" / str(i)
        (datum_in / rel).parent.mkdir(parents=True, exist_ok=True)
        (datum_in / rel).symlink_to(src)
        out, control = work / "out" / str(i), work / "control" / str(i)
        out.mkdir(parents=True)
        control.mkdir(parents=True)
        lines.append(
            json.dumps(
                {
                    "id": f"d{i}",
                    "inputs": {"flower_photos": str(datum_in)},
                    "out": str(out),
                    "control": str(control),
                }
            )
        )
    manifest = work / "datums.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def peak_rss_mib(manifest: Path, architecture: str) -> tuple[float, float]:
    """(peak RSS in MiB, seconds) of one Embed process over ``manifest``."""
    env = {**os.environ, "TULIP_DATUMS": str(manifest), "ARCHITECTURE": architecture}
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "training.embed"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"Embed failed ({proc.returncode}): {err.strip().splitlines()[-1:]}")
    return usage.ru_maxrss / 1024.0, seconds  # ru_maxrss is in KiB on Linux


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--counts", default="500,1000,2000,3000")
    p.add_argument("--architecture", default="mobilenet_1.0_224")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    counts = [int(c) for c in args.counts.split(",")]
    photos = sorted(DATA.glob("*/*.jpg"))

    results = []
    for count in counts:
        with tempfile.TemporaryDirectory(prefix="embed_mem_") as tmp:
            manifest = write_manifest(photos, count, Path(tmp))
            rss, seconds = peak_rss_mib(manifest, args.architecture)
            written = sum(1 for _ in (Path(tmp) / "out").rglob("*.json"))
        results.append(
            {
                "images": count,
                "peak_rss_mib": round(rss, 1),
                "seconds": round(seconds, 1),
                "records": written,
            }
        )
        if not args.json:
            print(
                f"{count:>6} images: peak RSS {rss:8.1f} MiB in {seconds:6.1f} s "
                f"({written} records)",
                flush=True,
            )

    base = results[0]
    rows = [
        {
            "name": f"embed memory: peak RSS at {r['images']} images [{args.architecture}]",
            "figure": r["peak_rss_mib"],
            "baseline": base["peak_rss_mib"],
            "ratio": round(r["peak_rss_mib"] / base["peak_rss_mib"], 3),
            "unit": "MiB",
            "notes": f"baseline: peak at {base['images']} images, same run; fresh process per "
            "count; want ratio ~1.0 (flat)",
        }
        for r in results[1:]
    ]
    machine = f"{platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}"
    if args.json:
        json.dump({"machine": machine, "rows": rows, "details": results}, sys.stdout, indent=2)
        print()
    else:
        for row in rows:
            print(
                f"{row['figure']:>9.4g} {row['baseline']:>9.4g} {row['ratio']:>7.3g}  "
                f"{row['name']}  ({row['notes']})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
