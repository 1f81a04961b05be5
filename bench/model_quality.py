"""Edge model quality: the exported TFLite models against logistic regression, and int8 vs float32.

Runs Embed -> Train -> Convert (the stages' own functions) on the 600 shared flower photos,
then compares, in the same run:

* test accuracy of ``optimized_graph.lite`` and of every variant, against a 5-fold
  cross-validated logistic regression on the same embeddings (the bar), and against a
  logistic regression fitted on the same training split and scored on the same test split;
* int8 against float32: top-1 accuracy (test split, and validation+test for more images)
  and file size. Bars: int8 within 1 point of float32, at most a third of its size.

    python bench/model_quality.py [--architecture mobilenet_1.0_224] [--embeddings DIR]
                                  [--workdir DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DATA = Path(os.environ.get("TULIP_SHARED", "/work/shared")) / "data" / "flower_photos"


def embed(images: Path, out: Path, architecture: str) -> float:
    from pipelines.worker import Datum
    from training.backbones import KerasEmbedder
    from training.embed import make_processor

    with tempfile.TemporaryDirectory(prefix="model_quality_in_") as tmp:
        # What the Embed spec's glob /*/* sees: class folders only (no ATTRIBUTION.txt).
        for f in sorted(images.glob("*/*")):
            link = Path(tmp) / f.relative_to(images)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(f.resolve())
        t0 = time.perf_counter()
        process = make_processor(KerasEmbedder(architecture))
        process([Datum(id="all", inputs={"flower_photos": Path(tmp)}, out=out)])
        return time.perf_counter() - t0


def logistic_baselines(embeddings: Path, splits: dict, seed: int) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    from pipelines.records import load_dir

    data = load_dir(embeddings)
    labels = sorted(set(data.labels))
    y = np.array([labels.index(label) for label in data.labels])
    x = data.vectors
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    cv = cross_val_score(LogisticRegression(max_iter=3000), x, y, cv=folds)
    head_cv = []
    for train_rows, test_rows in folds.split(x, y):  # the same folds as the LR baseline
        from training.head import fit_head
        from training.splits import VALIDATION, split_of

        inner_val = np.array(
            [split_of(data.sha256[i], validation=0.1, test=0.0) == VALIDATION for i in train_rows]
        )
        tr, va = train_rows[~inner_val], train_rows[inner_val]
        head = fit_head(x[tr], y[tr], len(labels), x_val=x[va], y_val=y[va], seed=seed)
        head_cv.append(float(np.mean(head.predict_proba(x[test_rows]).argmax(1) == y[test_rows])))
    split = np.array([splits[p]["split"] for p in data.paths])
    lr = LogisticRegression(max_iter=3000).fit(x[split == "train"], y[split == "train"])
    return {
        "lr_5fold_accuracy": float(cv.mean()),
        "lr_5fold_std": float(cv.std()),
        "lr_train_split_test_accuracy": float(lr.score(x[split == "test"], y[split == "test"])),
        "images": len(y),
        "head_5fold_accuracy": float(np.mean(head_cv)),
        "head_5fold_std": float(np.std(head_cv)),
    }


def heldout_accuracy(variants: Path, images: Path, splits: dict, labels: list[str]) -> dict:
    """Each variant's accuracy on validation+test images (about twice the test split alone)
    and on every image: top-1 figures to compare variants with, not held-out accuracies."""
    from conversion.evaluate import run_tflite
    from pipelines.layout import label_of
    from training.backbones import normalize
    from training.images import decode

    paths = sorted(splits)
    held = np.array([splits[p]["split"] in ("validation", "test") for p in paths])
    x = normalize(np.stack([decode(images / p.lstrip("/")) for p in paths]))
    y = np.array([labels.index(label_of(p)) for p in paths])
    out = {}
    top1 = {}
    for f in sorted(variants.glob("*.tflite")):
        run = run_tflite(f.read_bytes(), x, num_threads=os.cpu_count() or 1)
        top1[f.stem] = run.probabilities.argmax(1)
        hit = top1[f.stem] == y
        out[f.stem] = {
            "accuracy": float(np.mean(hit[held])),
            "images": int(held.sum()),
            "all_images_accuracy": float(np.mean(hit)),
            "all_images": len(y),
        }
    if "int8" in top1 and "float32" in top1:
        same = top1["int8"] == top1["float32"]
        out["int8_float32_agreement"] = float(np.mean(same[held]))
        out["int8_float32_agreement_all"] = float(np.mean(same))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--architecture", default="mobilenet_1.0_224")
    p.add_argument("--images", type=Path, default=DATA)
    p.add_argument("--embeddings", type=Path, default=None, help="reuse an Embed output")
    p.add_argument("--workdir", type=Path, default=None, help="keep Train/Convert outputs here")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

    from conversion.convert import ConvertOptions, convert_stage
    from pipelines.layout import SPLITS_FILE, mounted
    from training.train import TrainOptions, train

    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="model_quality_")
        work = Path(tmp.name)
    else:
        work = args.workdir
        work.mkdir(parents=True, exist_ok=True)
    timings = {}
    embeddings = args.embeddings
    if embeddings is None:
        embeddings = work / "Embed"
        timings["embed_s"] = round(embed(args.images, embeddings, args.architecture), 1)
    t0 = time.perf_counter()
    metrics = train(embeddings, args.images, work / "Train", TrainOptions(seed=args.seed))
    timings["train_s"] = round(time.perf_counter() - t0, 1)
    t0 = time.perf_counter()
    conv = convert_stage(
        work / "Train", args.images, work / "Convert", options=ConvertOptions(keep_variants=True)
    )
    timings["convert_s"] = round(time.perf_counter() - t0, 1)
    splits = json.loads(mounted(work / "Train", SPLITS_FILE).read_text())["files"]
    base = logistic_baselines(embeddings, splits, args.seed)
    held = heldout_accuracy(work / "Convert" / "variants", args.images, splits, conv["labels"])
    if tmp is not None:
        tmp.cleanup()

    lr5 = base["lr_5fold_accuracy"]
    lr_same = base["lr_train_split_test_accuracy"]
    n_test = conv["evaluation"]["images"]
    pub = conv["published"]
    v = conv["variants"]
    rows = [
        {
            "name": f"quality: Train's head, 5-fold CV, vs 5-fold LR [{args.architecture}]",
            "figure": round(base["head_5fold_accuracy"], 4),
            "baseline": round(lr5, 4),
            "ratio": round(base["head_5fold_accuracy"] / lr5, 3),
            "unit": "accuracy",
            "notes": "same folds; Train's own head selection (LR with C tuned on an inner "
            "validation split, or a Dense head) fitted on 4 folds; apples to apples with the bar",
        },
        {
            "name": f"quality: optimized_graph.lite ({pub['variant']}) test accuracy vs 5-fold LR "
            f"[{args.architecture}]",
            "figure": round(pub["accuracy"], 4),
            "baseline": round(lr5, 4),
            "ratio": round(pub["accuracy"] / lr5, 3),
            "unit": "accuracy",
            "notes": f"test split of {n_test} images (sampling error about "
            f"{100 * (lr5 * (1 - lr5) / max(n_test, 1)) ** 0.5:.1f} points) vs LR 5-fold CV on "
            f"all {base['images']} embeddings (std {base['lr_5fold_std']:.3f}); bar: ratio >= 1",
        },
        {
            "name": "quality: optimized_graph.lite test accuracy vs LR on the same split",
            "figure": round(pub["accuracy"], 4),
            "baseline": round(lr_same, 4),
            "ratio": round(pub["accuracy"] / lr_same, 3),
            "unit": "accuracy",
            "notes": "LR (C=1) fitted on the train split, scored on the same test images",
        },
    ]
    for name in ("float32", "float16", "dynamic", "int8"):
        r = v[name]
        rows.append(
            {
                "name": f"quality: {name} test accuracy vs 5-fold LR",
                "figure": round(r["accuracy"], 4),
                "baseline": round(lr5, 4),
                "ratio": round(r["accuracy"] / lr5, 3),
                "unit": "accuracy",
                "notes": f"agreement with Keras {r['agreement']:.3f}; {r['size_bytes']:,} bytes; "
                f"latency median {r['latency_ms']['median']} ms, p90 {r['latency_ms']['p90']} ms "
                "(1 thread); val+test accuracy "
                f"{held.get(name, {}).get('accuracy', float('nan')):.4f}",
            }
        )
    i8, f32 = v["int8"], v["float32"]
    rows += [
        {
            "name": "quality: int8 vs float32 top-1 on the test split",
            "figure": round(i8["accuracy"], 4),
            "baseline": round(f32["accuracy"], 4),
            "ratio": round(i8["accuracy"] / f32["accuracy"], 3),
            "unit": "accuracy",
            "notes": f"difference {100 * (i8['accuracy'] - f32['accuracy']):+.1f} points on "
            f"{n_test} images; bar: no worse than -1.0",
        },
        {
            "name": "quality: int8 vs float32 top-1 on validation+test",
            "figure": round(held["int8"]["accuracy"], 4),
            "baseline": round(held["float32"]["accuracy"], 4),
            "ratio": round(held["int8"]["accuracy"] / held["float32"]["accuracy"], 3),
            "unit": "accuracy",
            "notes": f"{held['int8']['images']} images (validation ones also refit the head, so "
            "this is a quantisation-cost figure, not a held-out accuracy); difference "
            f"{100 * (held['int8']['accuracy'] - held['float32']['accuracy']):+.1f} points; "
            f"int8/float32 top-1 agreement {held.get('int8_float32_agreement', 0):.3f}",
        },
        {
            "name": "quality: int8 vs float32 top-1 on all images (quantisation cost)",
            "figure": round(held["int8"]["all_images_accuracy"], 4),
            "baseline": round(held["float32"]["all_images_accuracy"], 4),
            "ratio": round(
                held["int8"]["all_images_accuracy"] / held["float32"]["all_images_accuracy"], 3
            ),
            "unit": "accuracy",
            "notes": f"{held['int8']['all_images']} images, training images included (this "
            "measures what quantisation costs, not generalisation); difference "
            f"{100 * (held['int8']['all_images_accuracy'] - held['float32']['all_images_accuracy']):+.1f}"
            f" points; int8/float32 agreement {held.get('int8_float32_agreement_all', 0):.3f}",
        },
        {
            "name": "quality: int8 size vs float32 size",
            "figure": i8["size_bytes"],
            "baseline": f32["size_bytes"],
            "ratio": round(i8["size_bytes"] / f32["size_bytes"], 3),
            "unit": "bytes",
            "notes": "bar: ratio <= 0.333",
        },
    ]
    machine = f"{platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}"
    details = {
        "baselines": base,
        "heldout": held,
        "timings": timings,
        "train_head": metrics["head"]["kind"],
        "splits": metrics["splits"]["sizes"],
        "published": pub,
    }
    if args.json:
        json.dump({"machine": machine, "rows": rows, "details": details}, sys.stdout, indent=2)
        print()
    else:
        print(f"# model quality ({machine}); {json.dumps(timings)}")
        for row in rows:
            print(
                f"{row['figure']:>9.4g} {row['baseline']:>9.4g} {row['ratio']:>7.3g}  "
                f"{row['name']}  ({row['notes']})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
