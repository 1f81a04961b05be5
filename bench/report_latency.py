"""Latency of the audit page of a 3,000-image audit under wrk, served by a real `tulip serve`.

The store: a data repo of 3,000 real JPEGs (the 600 shared flower photos, each under five
names, so six classes of 500; blobs are content-addressed, so the repo costs 600 photos of
disk), and an Audit commit whose ``audit.json`` is SYNTHETIC but shaped like the auditor's:
3,000 projection points, per-class stats, a 6x6 overlap matrix, a class_overlap failure
(orchids vs tulips) and 150 label issues (5% of the images). No pipeline runs.

For each WSGI server (waitress, Werkzeug's threaded server), `tulip serve` is started for
real, the audit page is fetched once (the cold render, which parses the document and builds
the page model), then wrk hammers it (2 threads, 8 connections, 10 s by default) and a Lua
hook reports p50/p95/p99. The baseline, in the same run and on the same server, is
``/healthz`` (a route that touches nothing); also measured: a cached thumbnail.

    python bench/report_latency.py [--json] [--duration 10] [--connections 8] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("TULIP_SHARED", REPO.parent / "shared"))
FLOWERS = SHARED / "data" / "flower_photos"
CLASSES = ("daisy", "dandelion", "roses", "sunflowers", "tulips", "orchids")
IMAGES = 3000

LUA = """
done = function(summary, latency, requests)
  io.write(string.format('{"requests": %d, "errors": %d, "seconds": %f, "p50": %f, "p95": %f, "p99": %f, "mean": %f}\\n',
    summary.requests, summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.status + summary.errors.timeout, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    latency.mean / 1000))
end
"""


def machine() -> str:
    return f"{platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}"


def make_store(root: Path) -> dict:
    """3,000 real JPEGs in six classes and one synthetic audit of them."""
    os.environ["TULIP_NO_AUTORUN"] = "1"
    from pipelines.embedded.store import EmbeddedStore
    from pipelines.layout import AUDIT_FILE, AUDIT_SCHEMA

    photos = sorted(FLOWERS.glob("*/*.jpg"))
    if len(photos) < 100:
        raise SystemExit(f"need the shared flower photos at {FLOWERS}")
    store = EmbeddedStore(root)
    rng = random.Random(7)
    paths: list[str] = []
    store.create_repo("flower_photos")
    with store.start_commit("flower_photos", description="3,000 photos") as w:
        for i in range(IMAGES):
            label = CLASSES[i % len(CLASSES)]
            src = photos[i % len(photos)]
            path = f"/{label}/{i:05d}_{src.name}"
            w.put_file(path, src)
            paths.append(path)
    data = store.resolve("flower_photos@master").id
    centres = {c: (rng.uniform(-5, 5), rng.uniform(-5, 5)) for c in CLASSES}
    centres["orchids"] = (centres["tulips"][0] + 0.3, centres["tulips"][1] - 0.2)
    points = []
    for p in paths:
        label = p.split("/")[1]
        cx, cy = centres[label]
        points.append({"x": round(rng.gauss(cx, 1.2), 4), "y": round(rng.gauss(cy, 1.2), 4),
                       "label": label, "path": p})  # fmt: skip
    blame = [{"repo": "flower_photos", "commit": data}]
    findings = [
        {"check": "class_overlap", "severity": "fail", "classes": ["orchids", "tulips"], "score": 0.96,
         "files": [p for p in paths if p.startswith("/orchids/")][:50], "introduced_by": blame,
         "message": "orchids and tulips are indistinguishable (0.96, calibrated threshold 0.5)"}
    ]  # fmt: skip
    for p in rng.sample(paths, IMAGES // 20):
        given = p.split("/")[1]
        other = rng.choice([c for c in CLASSES if c != given])
        findings.append(
            {"check": "label_issue", "severity": "warn", "classes": [given, other],
             "score": round(rng.uniform(0.5, 1), 3), "files": [p], "introduced_by": blame,
             "message": f"{p} is labelled {given} but looks like {other}"}
        )  # fmt: skip
    matrix = [[1.0 if a == b else round(rng.uniform(0, 0.3), 3) for b in CLASSES] for a in CLASSES]
    i, j = CLASSES.index("orchids"), CLASSES.index("tulips")
    matrix[i][j] = matrix[j][i] = 0.96
    doc = {
        "schema": AUDIT_SCHEMA,
        "verdict": "fail",
        "data": {"repo": "flower_photos", "branch": "master", "commit": data},
        "reference": None,
        "summary": {"images": IMAGES, "classes": {c: IMAGES // len(CLASSES) for c in CLASSES}},
        "findings": findings,
        "per_class": {
            c: {"images": IMAGES // len(CLASSES), "label_issues": 25, "purity": 0.95}
            for c in CLASSES
        },
        "overlap": {"labels": list(CLASSES), "matrix": matrix},
        "projection": {"method": "pca", "points": points},
    }
    store.create_repo("Audit")
    with store.start_commit("Audit", description="synthetic 3,000-image audit") as w:
        w.put_bytes(AUDIT_FILE, json.dumps(doc).encode())
    audit = store.resolve("Audit@master").id
    store.close()
    return {"data": data, "audit": audit, "thumb": paths[4], "doc_bytes": len(json.dumps(doc))}


def start_server(root: Path, server: str, log: Path) -> tuple[subprocess.Popen, str]:
    exe = shutil.which("tulip", path=str(Path(sys.executable).parent)) or "tulip"
    with open(log, "wb") as err:  # a file, not a pipe: an unread pipe would stall the server
        proc = subprocess.Popen(
            [exe, "--root", str(root), "serve", "--port", "0", "--server", server],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    line = proc.stdout.readline()
    m = re.search(r"at (http://127\.0\.0\.1:\d+)/", line)
    if not m:
        proc.kill()
        raise SystemExit(f"tulip serve did not start: {line!r} {log.read_text()}")
    return proc, m.group(1)


def fetch(url: str) -> tuple[float, int, int]:
    t = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as r:
        body = r.read()
        status = r.status
    return time.perf_counter() - t, status, len(body)


def wrk(url: str, *, duration: int, connections: int, threads: int, script: Path) -> dict:
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    if result["errors"]:
        raise SystemExit(f"wrk saw {result['errors']} errors on {url}:\n{out}")
    return result


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--duration", type=int, default=10, help="seconds of wrk per URL")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2, help="wrk threads")
    ap.add_argument("--servers", default="waitress,werkzeug")
    ap.add_argument(
        "--keep", type=Path, help="build the store here and keep it (reused if present)"
    )
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    work = args.keep or Path(tempfile.mkdtemp(prefix="tulip-report-bench-"))
    root = work / "store"
    facts_file = work / "facts.json"
    rows = []
    try:
        if facts_file.exists():
            facts = json.loads(facts_file.read_text())
        else:
            shutil.rmtree(root, ignore_errors=True)
            t = time.perf_counter()
            facts = make_store(root)
            facts_file.write_text(json.dumps(facts))
            print(f"built the store in {time.perf_counter() - t:.0f} s", file=sys.stderr)
        script = work / "percentiles.lua"
        script.write_text(LUA)
        from reports.server import pick_server

        servers = [
            s for s in args.servers.split(",") if s != "waitress" or pick_server() == "waitress"
        ]
        if len(servers) < len(args.servers.split(",")):
            print("waitress is not installed: measuring werkzeug only", file=sys.stderr)
        for server in servers:
            shutil.rmtree(root / "cache", ignore_errors=True)  # a cold cache for each server
            proc, base = start_server(root, server, work / f"{server}.log")
            try:
                page = f"{base}/audits/Audit/{facts['audit']}"
                cold_s, status, size = fetch(page)
                assert status == 200, status
                thumb = f"{base}/thumbs/flower_photos/{facts['data']}{facts['thumb']}"
                fetch(thumb)
                w = dict(duration=args.duration, connections=args.connections, threads=args.threads,
                         script=script)  # fmt: skip
                base_r = wrk(f"{base}/healthz", **w)
                page_r = wrk(page, **w)
                thumb_r = wrk(thumb, **w)
            finally:
                proc.terminate()
                proc.wait(10)
            load = f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s on loopback"
            for pct in ("p50", "p95", "p99"):
                rows.append(
                    {
                        "name": f"audit page of a {IMAGES}-image audit, {pct}, {server}",
                        "figure": round(page_r[pct], 1),
                        "baseline": round(base_r[pct], 2),
                        "ratio": round(page_r[pct] / base_r[pct], 1),
                        "unit": "ms",
                        "notes": f"{load}; {page_r['requests'] / page_r['seconds']:.0f} req/s, "
                        f"page {size // 1024} KiB (synthetic audit.json of {facts['doc_bytes'] // 1024} KiB, "
                        f"real JPEGs); baseline: /healthz on the same server, "
                        f"{base_r['requests'] / base_r['seconds']:.0f} req/s; goal p95 < 200 ms",
                    }
                )
            rows.append(
                {
                    "name": f"audit page cold render (first request), {server}",
                    "figure": round(cold_s * 1000, 1),
                    "baseline": round(page_r["p50"], 1),
                    "ratio": round(cold_s * 1000 / page_r["p50"], 1),
                    "unit": "ms",
                    "notes": "parse the 3,000-image document, pick thumbnails, build charts; "
                    "baseline: the cached page's p50 under load",
                }
            )
            rows.append(
                {
                    "name": f"cached thumbnail, p95, {server}",
                    "figure": round(thumb_r["p95"], 2),
                    "baseline": round(base_r["p95"], 2),
                    "ratio": round(thumb_r["p95"] / base_r["p95"], 1),
                    "unit": "ms",
                    "notes": f"{load}; {thumb_r['requests'] / thumb_r['seconds']:.0f} req/s; "
                    "baseline: /healthz p95",
                }
            )
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    for r in rows:
        r["machine"] = machine()
        r["bench"] = "report_latency"
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
