"""The review loop (issue 14), measured on the 600 shared flower photos.

1. **Review -> re-audit time.** The real Embed and Audit stages on the embedded engine, as in
   ``tulip demo``: four classes and a five-class reference gallery (round 1), then ``/orchids``
   holding tulips (round 2: the audit fails). A review through ``auditor.review.apply_review``
   (what ``tulip review apply`` calls) renames orchids -> tulips and accepts round 1's label
   issues; the figure is the time from the apply to the finished re-audit, against round 2's
   time from its commit to its finished audit (the baseline, measured in the same run). A
   rename changes no content, so Embed must embed 0 images again (from its content cache).
2. **What the suggested relabels are worth.** 5 % of the labels flipped at random; the audit's
   ``label_issue`` findings suggest a class for each file they flag; applying every suggestion
   (the review's ``relabel``) gives the labels the next model trains on. That model's test
   accuracy, scored against the TRUE labels of Train's own test split, against the model
   trained on the noisy labels and the one trained on the true labels. The model is Train's
   head (``training.head.fit_head`` on Train's content-hash splits); embeddings are
   mobilenet_0.25_224 (the demo's backbone) from ``flower_embeddings``.

    python bench/review_loop.py [--seeds 5] [--skip-pipeline | --only-pipeline] [--json]
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

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
DATA = (
    Path(os.environ.get("TULIP_SHARED", HERE.parent.parent / "shared")) / "data" / "flower_photos"
)
ARCH = "mobilenet_0.25_224"
CLASSES = ["daisy", "dandelion", "roses", "sunflowers", "tulips"]
REF = {"repo": "flower_photos", "branch": "master", "commit": "bench"}


# -- 1: review -> re-audit ------------------------------------------------------------------------


def _spec(name: str) -> dict:
    s = json.loads((HERE.parent / "pipelines" / f"{name}.json").read_text())
    if "env" in s["transform"] and "ARCHITECTURE" in s["transform"]["env"]:
        s["transform"]["env"]["ARCHITECTURE"] = ARCH
    return s


def review_time() -> dict:
    os.environ["TULIP_NO_AUTORUN"] = "1"
    from auditor.findings import CLASS_LEVEL, id_of
    from auditor.review import apply_review, parse_decisions
    from pipelines.embedded.store import EmbeddedStore
    from pipelines.layout import AUDIT, AUDIT_FILE, read_json
    from pipelines.runner import Runner

    def jobs_until_idle(store) -> dict:
        return {j.pipeline: j for j in Runner(store).run_until_idle()}

    per_class = {c: sorted((DATA / c).glob("*.jpg")) for c in CLASSES}
    work = Path(tempfile.mkdtemp(prefix="tulip-review-bench-"))
    try:
        store = EmbeddedStore(work / "store")
        store.create_repo("flower_photos")
        store.create_repo("label_reference")
        with store.start_commit("label_reference") as w:
            for c, files in per_class.items():
                for p in files[:20]:
                    w.put_file(f"/{c}/{p.name}", p)
        with store.start_commit("flower_photos", description="round 1: four classes") as w:
            for c in CLASSES[:-1]:
                for p in per_class[c][20:]:
                    w.put_file(f"/{c}/{p.name}", p)
        for name in ("embed", "audit"):
            store.create_pipeline(_spec(name))
        jobs_until_idle(store)
        audit1 = store.resolve(f"{AUDIT}@master")
        t = time.perf_counter()
        with store.start_commit("flower_photos", description="add orchids") as w:
            for p in per_class["tulips"][20:]:
                w.put_file(f"/orchids/{p.name}", p)
        round2 = jobs_until_idle(store)
        round2_s = time.perf_counter() - t
        audit2 = store.resolve(f"{AUDIT}@master")
        doc2 = read_json(store, AUDIT, audit2.id, AUDIT_FILE)
        doc1 = read_json(store, AUDIT, audit1.id, AUDIT_FILE)
        earlier = {id_of(f) for f in doc1["findings"]}
        decisions = [
            {"finding": id_of(f), "action": "rename", "to": f["classes"][1]}
            for f in doc2["findings"]
            if f["check"] in CLASS_LEVEL and f["classes"][:1] == ["orchids"]
        ]
        decisions += [
            {"finding": id_of(f), "action": "accept"}
            for f in doc2["findings"]
            if f["check"] == "label_issue"
            and id_of(f) in earlier
            and not any(p.startswith("/orchids/") for p in f["files"])
        ]
        t = time.perf_counter()
        result = apply_review(
            store,
            f"{AUDIT}@{audit2.id}",
            parse_decisions(json.dumps(decisions), source="bench"),
            by="bench",
        )
        apply_s = time.perf_counter() - t
        round3 = jobs_until_idle(store)
        review_s = time.perf_counter() - t
        doc3 = read_json(store, AUDIT, store.resolve(f"{AUDIT}@master").id, AUDIT_FILE)
        embed_log = store.logs("Embed", round3["Embed"].id)
        store.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    done = [line for line in embed_log.splitlines() if "Embed done:" in line]
    return {
        "round2_seconds": round2_s,
        "review_seconds": review_s,
        "apply_seconds": apply_s,
        "verdicts": [doc1["verdict"], doc2["verdict"], doc3["verdict"]],
        "decisions": len(decisions),
        "moved": len(result.plan.moves),
        "embed_round2": (round2["Embed"].data_processed, round2["Embed"].data_skipped),
        "embed_round3": (round3["Embed"].data_processed, round3["Embed"].data_skipped),
        "embed_line": done[-1] if done else "",
        "baseline": doc3.get("baseline"),
    }


# -- 2: what the relabels are worth -----------------------------------------------------------


def relabel_effect(seeds: list[int], rate: float = 0.05) -> dict:
    from flower_embeddings import load

    from auditor.audit import run_audit
    from pipelines.records import EmbeddingSet
    from training.head import accuracy, fit_head
    from training.splits import TEST, TRAIN, VALIDATION, assign_splits

    paths, true, shas, x = load(DATA, alpha=0.25)
    true = np.array(true)
    splits = assign_splits(paths, list(true), shas)
    split = np.array([splits.assignment[p] for p in paths])
    tr, va, te = (np.flatnonzero(split == s) for s in (TRAIN, VALIDATION, TEST))
    index = {p: i for i, p in enumerate(paths)}

    def test_accuracy(labels: np.ndarray, seed: int) -> float:
        y = np.searchsorted(CLASSES, labels)
        head = fit_head(x[tr], y[tr], len(CLASSES), x_val=x[va], y_val=y[va], seed=seed)
        return accuracy(head.predict_proba(x[te]), np.searchsorted(CLASSES, true[te]))

    rows = []
    for s in seeds:
        rng = np.random.default_rng(s)
        noisy = true.copy()
        for i in rng.choice(len(true), round(rate * len(true)), replace=False):
            noisy[i] = rng.choice([c for c in CLASSES if c != true[i]])
        data = EmbeddingSet(list(paths), [str(v) for v in noisy], list(shas), x, ARCH)
        result = run_audit(data, data_ref=REF)
        reviewed = noisy.copy()
        relabels = 0
        for f in result.findings:
            if f.check == "label_issue" and len(f.classes) == 2:
                reviewed[index[f.files[0]]] = f.classes[1]  # the suggested class
                relabels += 1
        rows.append(
            {
                "seed": s,
                "wrong_before": int((noisy != true).sum()),
                "wrong_after": int((reviewed != true).sum()),
                "relabels": relabels,
                "noisy": test_accuracy(noisy, s),
                "reviewed": test_accuracy(reviewed, s),
                "true": test_accuracy(true, s),
            }
        )

    def mean(k: str) -> float:
        return float(np.mean([r[k] for r in rows]))

    return {
        "rate": rate,
        "test_images": len(te),
        "per_seed": rows,
        **{k: mean(k) for k in ("noisy", "reviewed", "true", "wrong_before", "wrong_after")},
        "relabels": mean("relabels"),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--skip-pipeline", action="store_true", help="only the relabel figures")
    ap.add_argument("--only-pipeline", action="store_true", help="only the re-audit time")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    machine = f"{platform.machine()} {os.cpu_count()} cores"
    rows = []
    if not args.skip_pipeline:
        r = review_time()
        rows.append(
            {
                "name": "review (rename orchids -> tulips) to finished re-audit, real Embed + Audit",
                "figure": round(r["review_seconds"], 1),
                "baseline": round(r["round2_seconds"], 1),
                "ratio": round(r["review_seconds"] / r["round2_seconds"], 3),
                "unit": "s",
                "notes": f"baseline: round 2 (add /orchids) to its finished audit; verdicts "
                f"{' -> '.join(r['verdicts'])}; {r['decisions']} decisions, {r['moved']} files "
                f"moved, apply {r['apply_seconds']:.2f} s; Embed datums processed/skipped "
                f"round 2 {r['embed_round2']}, re-audit {r['embed_round3']}; "
                f"{r['embed_line'].strip()}; {ARCH}",
                "machine": machine,
            }
        )
    if args.only_pipeline:
        print(json.dumps(rows, indent=2) if args.json else rows)
        return 0
    e = relabel_effect(list(range(args.seeds)))
    common = (
        f"{e['rate']:.0%} flips, {len(e['per_seed'])} seeds, {e['test_images']} test images "
        f"(Train's split) scored on true labels; {e['relabels']:.1f} suggested relabels applied: "
        f"wrong labels {e['wrong_before']:.1f} -> {e['wrong_after']:.1f}; Train's head on {ARCH}"
    )
    rows.append(
        {
            "name": "next model's test accuracy after the label_issue relabels vs the noisy labels",
            "figure": round(e["reviewed"], 4),
            "baseline": round(e["noisy"], 4),
            "ratio": round(e["reviewed"] / e["noisy"], 4),
            "unit": "accuracy",
            "notes": f"baseline: trained on the noisy labels; {common}",
            "machine": machine,
        }
    )
    rows.append(
        {
            "name": "next model's test accuracy after the label_issue relabels vs the true labels",
            "figure": round(e["reviewed"], 4),
            "baseline": round(e["true"], 4),
            "ratio": round(e["reviewed"] / e["true"], 4),
            "unit": "accuracy",
            "notes": f"baseline: trained on the true labels; {common}",
            "machine": machine,
        }
    )
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            print(
                f"{r['name']}: {r['figure']} {r['unit']} vs {r['baseline']} (ratio {r['ratio']})"
                f"\n    {r['notes']}"
            )
        print(json.dumps(e["per_seed"], indent=1), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
