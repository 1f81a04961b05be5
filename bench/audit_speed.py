"""How long a full audit of 3,000 images takes once the embeddings are cached, split by check.

The 3,000 images are built from the 600 real mobilenet_1.0_224 embeddings (bench/out/): each
new row mixes two photos of one class (weights 0.35-0.65) and adds Gaussian noise of 10 % of
the per-dimension spread, so the rows are plausible new photos, not copies. The audit runs
with everything on: a previous commit (the first 2,400 rows: drift, new labels), a 100-per-
class reference gallery, train/test splits (split_leakage), and the default policy.

Baselines in the same run: the audit of the 600 real photos, and cleanlab's
``find_label_issues`` alone on the 3,000 rows (on the out-of-sample probabilities the audit
computes; it is one step of label_issue).

Run: ``python bench/audit_speed.py [--json] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from flower_embeddings import load

from auditor.audit import run_audit
from auditor.checks.label_issue import label_scores
from auditor.features import auto_dims, fit_projection
from pipelines.records import EmbeddingSet

REF = {"repo": "flower_photos", "branch": "master", "commit": "bench"}


def synthetic(n_per_class: int, *, seed: int = 0, prefix: str = "") -> EmbeddingSet:
    _paths, labels, _sha, x = load()
    labels = np.array(labels)
    rng = np.random.default_rng(seed)
    out_paths, out_labels, out_vecs = [], [], []
    for c in sorted(set(labels)):
        rows = x[labels == c]
        spread = rows.std(axis=0)
        for k in range(n_per_class):
            i, j = rng.integers(0, len(rows), 2)
            w = rng.uniform(0.35, 0.65)
            v = w * rows[i] + (1 - w) * rows[j] + 0.1 * spread * rng.normal(size=x.shape[1])
            out_vecs.append(np.maximum(v, 0))
            out_paths.append(f"/{c}/{prefix}{k:05d}.jpg")
            out_labels.append(str(c))
    order = np.argsort(out_paths)
    return EmbeddingSet(
        paths=[out_paths[i] for i in order],
        labels=[out_labels[i] for i in order],
        sha256=[f"{prefix}{out_paths[i]}" for i in order],
        vectors=np.array([out_vecs[i] for i in order], np.float32),
        architecture="mobilenet_1.0_224",
    )


def subset(s: EmbeddingSet, rows) -> EmbeddingSet:
    rows = list(rows)
    return EmbeddingSet(
        paths=[s.paths[i] for i in rows],
        labels=[s.labels[i] for i in rows],
        sha256=[s.sha256[i] for i in rows],
        vectors=s.vectors[rows],
        architecture=s.architecture,
    )


def timed(fn, repeats: int) -> tuple[float, float, object]:
    """(first call, median of the next `repeats` calls, last result)."""
    t = time.perf_counter()
    result = fn()
    first = time.perf_counter() - t
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return first, statistics.median(times), result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--images", type=int, default=3000)
    args = ap.parse_args(argv)
    per_class = args.images // 5
    data = synthetic(per_class)
    previous = subset(
        data, [i for i, p in enumerate(data.paths) if int(p[-9:-4]) < per_class * 0.8]
    )
    reference = synthetic(100, seed=1, prefix="ref")
    splits = {p: ("test" if i % 5 == 0 else "train") for i, p in enumerate(data.paths)}
    paths, labels, sha, x = load()
    real = EmbeddingSet(paths, labels, sha, x, "mobilenet_1.0_224")

    def full():
        return run_audit(
            data,
            reference=reference,
            previous=previous,
            splits=splits,
            data_ref=REF,
            reference_ref={"repo": "label_reference", "commit": "r"},
        )

    cold, warm, result = timed(full, args.repeats)
    timings = result.timings
    real_cold, real_warm, _ = timed(lambda: run_audit(real, data_ref=REF), args.repeats)

    from cleanlab.filter import find_label_issues

    features = fit_projection(data.vectors, dims=auto_dims(5))(data.vectors)
    scores = label_scores(data.vectors, data.labels, features=features)
    _, cl_warm, _ = timed(lambda: find_label_issues(scores.given, scores.regression), args.repeats)

    counts = result.document["summary"]["findings"]
    rows = [
        dict(
            name=f"audit speed: full audit of {len(data)} cached embeddings",
            figure=round(warm, 3),
            baseline=10.0,
            unit="s",
            notes=f"median of {args.repeats} after a first call of "
            f"{cold:.2f} s (lazy imports); target < 10 s; with previous, reference, splits",
        ),
        dict(
            name=f"audit speed: {len(data)} images vs the 600 real photos",
            figure=round(warm, 3),
            baseline=round(real_warm, 3),
            unit="s",
            notes=f"600-photo first call {real_cold:.2f} s",
        ),
        dict(
            name=f"audit speed: full audit vs cleanlab find_label_issues alone ({len(data)} rows)",
            figure=round(warm, 3),
            baseline=round(cl_warm, 3),
            unit="s",
            notes="find_label_issues on the audit's out-of-sample probabilities",
        ),
    ]
    for r in rows:
        r["ratio"] = round(r["figure"] / r["baseline"], 3) if r["baseline"] else None
    if args.json:
        print(json.dumps({"rows": rows, "timings": timings, "findings": counts}, indent=1))
        return 0
    for r in rows:
        print(
            f"{r['name']}: {r['figure']} {r['unit']} (baseline {r['baseline']}, ratio "
            f"{r['ratio']}) {r['notes']}"
        )
    print("\ntime by step (s, last run):")
    for k, v in sorted(timings.items(), key=lambda kv: -kv[1]):
        print(f"  {k:24s} {v:.3f}")
    print(f"\nfindings: {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
