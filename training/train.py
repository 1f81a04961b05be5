"""The Train stage: a classifier on Embed's embeddings, saved with its backbone as one model.

    python -m training.train --embeddings /pfs/Embed --images /pfs/flower_photos --out /pfs/out
        [--architecture A] [--fine-tune-layers N] [--epochs E] [--seed S]

Writes to ``--out``:

* ``model.keras``: backbone + softmax head; input the normalised float image
  ``(x - 127.5) / 127.5`` of shape 224x224x3, output probabilities in label order;
* ``retrained_labels.txt``: one label per line, sorted (the order of the model's outputs);
* ``metrics.json``: test accuracy overall and per class, confusion matrix, split sizes, the
  head that was chosen, and the data it was trained on;
* ``splits.json``: each repo path's split and content hash;
* ``training_summaries/``: TensorBoard event files.

Unreadable images (status ``unreadable`` in their record) are counted and skipped.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.layout import LABELS_FILE, METRICS_FILE, MODEL_FILE, SPLITS_FILE, mounted
from pipelines.layout import TRAIN as TRAIN_PIPELINE
from pipelines.records import EmbeddingSet, load_dir
from training.backbones import ARCHITECTURE_ENV, DEFAULT_ARCHITECTURE, parse_architecture
from training.head import Head, TrainingFailed, accuracy, fit_head, log_loss
from training.runtime import stage_main
from training.splits import TEST, TRAIN, VALIDATION, Splits, assign_splits

log = logging.getLogger(__name__)

METRICS_SCHEMA = "tulip.metrics/v1"
CONSISTENCY_SAMPLE = 16


@dataclass
class TrainOptions:
    architecture: str | None = None
    fine_tune_layers: int = 0
    fine_tune_epochs: int = 3
    epochs: int = 200
    seed: int = 0
    validation: float = 0.1
    test: float = 0.1


def _confusion(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> list[list[int]]:
    m = np.zeros((n, n), int)
    for t, p in zip(y_true, y_pred, strict=True):
        m[t, p] += 1
    return m.tolist()


def evaluate(probs: np.ndarray, y: np.ndarray, labels: list[str]) -> dict:
    """Accuracy overall and per class, and the confusion matrix (rows true, columns predicted)."""
    pred = probs.argmax(axis=1) if len(y) else np.zeros(0, int)
    per_class = {}
    for i, label in enumerate(labels):
        mask = y == i
        per_class[label] = {
            "n": int(mask.sum()),
            "accuracy": float(np.mean(pred[mask] == i)) if mask.any() else None,
        }
    return {
        "n": len(y),
        "accuracy": accuracy(probs, y) if len(y) else None,
        "loss": log_loss(probs, y) if len(y) else None,
        "per_class": per_class,
        "confusion_matrix": {
            "labels": labels,
            "rows": "true",
            "columns": "predicted",
            "matrix": _confusion(y, pred, len(labels)),
        },
    }


def resolve_architecture(requested: str | None, embeddings: EmbeddingSet) -> str:
    """The backbone to ship: the one the embeddings came from, checked against a request."""
    found = embeddings.architecture
    if found and found.startswith("tflite:"):
        raise TrainingFailed(
            f"the embeddings were computed by the TFLite embedder {found!r}; a Keras backbone "
            "is needed to ship a model, so run Embed with --architecture (e.g. mobilenet_1.0_224)"
        )
    env = os.environ.get(ARCHITECTURE_ENV)
    if found and not requested and env and env != found:
        log.warning(
            "$%s is %s but the embeddings are %s; using %s", ARCHITECTURE_ENV, env, found, found
        )
    arch = requested or found or env or DEFAULT_ARCHITECTURE
    parse_architecture(arch)
    if found and found != arch:
        raise TrainingFailed(
            f"the embeddings were computed with {found} but the requested architecture is {arch}; "
            f"run Embed with ARCHITECTURE={arch}, or train with --architecture {found}"
        )
    return arch


def _data_commits(embeddings_dir: Path, images_dir: Path) -> dict[str, str]:
    commits = {}
    for name in (embeddings_dir.name, images_dir.name):
        value = os.environ.get(f"{name}_COMMIT")
        if value:
            commits[name] = value
    return commits


def _write_scalars(directory: Path, scalars: dict[str, float], *, step: int = 0) -> None:
    import tensorflow as tf

    writer = tf.summary.create_file_writer(str(directory))
    with writer.as_default():
        for name, value in scalars.items():
            if value is not None and np.isfinite(value):
                tf.summary.scalar(name, float(value), step=step)
    writer.flush()
    writer.close()


def train(embeddings_dir: Path, images_dir: Path, out: Path, options: TrainOptions) -> dict:
    """Fit, evaluate and write everything to ``out``; returns the metrics dict."""
    t0 = time.perf_counter()
    if not embeddings_dir.is_dir():
        raise TrainingFailed(f"no embeddings directory at {embeddings_dir}; run Embed first")
    data = load_dir(embeddings_dir)
    counts = Counter(data.labels)
    if len(data) == 0:
        raise TrainingFailed(
            f"no readable image embeddings under {embeddings_dir} "
            f"({len(data.unreadable)} unreadable records); nothing to train on"
        )
    unlabelled = [p for p, label in zip(data.paths, data.labels, strict=True) if not label]
    if unlabelled:
        raise TrainingFailed(
            f"{len(unlabelled)} images sit at the top level with no class folder, e.g. "
            f"{unlabelled[0]}; put each image in a folder named after its label"
        )
    labels = sorted(counts)
    if len(labels) < 2:
        raise TrainingFailed(
            f"only one class ({labels[0]!r}, {counts[labels[0]]} images) in {embeddings_dir}; "
            "a classifier needs at least two class folders"
        )
    arch = resolve_architecture(options.architecture, data)
    index = {label: i for i, label in enumerate(labels)}
    y_all = np.array([index[label] for label in data.labels])
    splits = assign_splits(
        data.paths, data.labels, data.sha256, validation=options.validation, test=options.test
    )
    split_arr = np.array([splits.assignment[p] for p in data.paths])
    rows = {s: np.flatnonzero(split_arr == s) for s in (TRAIN, VALIDATION, TEST)}
    x = data.vectors
    xs = {s: x[r] for s, r in rows.items()}
    ys = {s: y_all[r] for s, r in rows.items()}

    summaries = out / "training_summaries"
    summaries.mkdir(parents=True, exist_ok=True)
    head = fit_head(
        xs[TRAIN],
        ys[TRAIN],
        len(labels),
        x_val=xs[VALIDATION],
        y_val=ys[VALIDATION],
        epochs=options.epochs,
        seed=options.seed,
        summaries=summaries / "head",
    )
    log.info("head: %s %s", head.kind, head.params)

    import keras

    keras.utils.set_random_seed(options.seed)
    from training.backbones import build_backbone
    from training.finetune import fine_tune, load_pixels, predict_images
    from training.head import build_classifier

    backbone = build_backbone(arch)
    model = build_classifier(backbone, head, labels=labels)
    size = parse_architecture(arch).image_size

    fine_tuned = None
    if options.fine_tune_layers > 0:
        if not images_dir.is_dir():
            raise TrainingFailed(
                f"--fine-tune-layers needs the images, but {images_dir} does not exist; "
                "pass --images"
            )
        tr_px, tr_keep = load_pixels(images_dir, [data.paths[i] for i in rows[TRAIN]], size=size)
        va_px, va_keep = load_pixels(
            images_dir, [data.paths[i] for i in rows[VALIDATION]], size=size
        )
        fine_tuned = fine_tune(
            model,
            backbone,
            tr_px,
            ys[TRAIN][tr_keep],
            layers=options.fine_tune_layers,
            val_pixels=va_px,
            y_val=ys[VALIDATION][va_keep],
            epochs=options.fine_tune_epochs,
            seed=options.seed,
            summaries=summaries / "fine_tune",
        )

    results: dict[str, dict] = {}
    consistency = None
    if fine_tuned is None:
        for s in (TRAIN, VALIDATION, TEST):
            results[s] = evaluate(head.predict_proba(xs[s]), ys[s], labels)
        consistency = _consistency(model, head, data, rows, images_dir, size=size)
    else:
        # The backbone changed, so the embeddings no longer describe it: evaluate on pixels.
        for s in (TRAIN, VALIDATION, TEST):
            px, keep = load_pixels(images_dir, [data.paths[i] for i in rows[s]], size=size)
            results[s] = evaluate(predict_images(model, px), ys[s][keep], labels)

    if head.params.get("refit_on"):
        results[VALIDATION]["note"] = (
            "validation images chose the head and were then added to its training data, so "
            "this is not a held-out figure; the test split is"
        )
    out.mkdir(parents=True, exist_ok=True)
    model.save(mounted(out, MODEL_FILE))
    mounted(out, LABELS_FILE).write_text(
        "".join(f"{label}\n" for label in labels), encoding="utf-8"
    )
    mounted(out, SPLITS_FILE).write_text(
        json.dumps(splits.to_json_dict(), indent=1), encoding="utf-8"
    )
    final: dict[str, float] = {}
    for s in (TRAIN, VALIDATION, TEST):
        final[f"{s}/accuracy"] = results[s]["accuracy"]
        final[f"{s}/loss"] = results[s]["loss"]
    _write_scalars(summaries / "final", final)
    metrics = _metrics(
        data,
        labels,
        splits,
        head,
        results,
        arch=arch,
        options=options,
        fine_tuned=fine_tuned,
        consistency=consistency,
        commits=_data_commits(embeddings_dir, images_dir),
        seconds=time.perf_counter() - t0,
    )
    mounted(out, METRICS_FILE).write_text(json.dumps(metrics, indent=1), encoding="utf-8")
    return metrics


def _consistency(model, head: Head, data: EmbeddingSet, rows, images_dir: Path, *, size) -> dict:
    """Do the saved model on pixels and the head on Embed's vectors agree? Catches a backbone
    or normalisation mismatch between Embed and Train before it ships."""
    from training.finetune import load_pixels, predict_images

    if not images_dir.is_dir():
        return {"checked": 0, "note": f"{images_dir} not available"}
    sample = list(rows[TEST][:CONSISTENCY_SAMPLE]) or list(rows[TRAIN][:CONSISTENCY_SAMPLE])
    px, keep = load_pixels(images_dir, [data.paths[i] for i in sample], size=size)
    if not keep:
        return {"checked": 0, "note": "no sample image could be decoded"}
    idx = [sample[k] for k in keep]
    from_pixels = predict_images(model, px)
    from_vectors = head.predict_proba(data.vectors[idx])
    agree = float(np.mean(from_pixels.argmax(1) == from_vectors.argmax(1)))
    diff = float(np.max(np.abs(from_pixels - from_vectors)))
    if agree < 1.0 and diff > 0.1:
        log.warning("model on pixels disagrees with head on embeddings (%.2f agree)", agree)
    return {"checked": len(idx), "top1_agreement": agree, "max_probability_difference": diff}


def _metrics(
    data,
    labels,
    splits: Splits,
    head: Head,
    results,
    *,
    arch,
    options,
    fine_tuned,
    consistency,
    commits,
    seconds,
) -> dict:
    per_split_class = {
        s: dict(
            sorted(
                Counter(
                    label
                    for p, label in zip(data.paths, data.labels, strict=True)
                    if splits.assignment[p] == s
                ).items()
            )
        )
        for s in (TRAIN, VALIDATION, TEST)
    }
    return {
        "schema": METRICS_SCHEMA,
        "architecture": arch,
        "labels": labels,
        "test": results[TEST],
        "validation": results[VALIDATION],
        "train": results[TRAIN],
        "accuracy": results[TEST]["accuracy"],
        "splits": {
            "sizes": splits.sizes(),
            "per_class": per_split_class,
            "fractions": {"validation": options.validation, "test": options.test},
            "all_train_classes": splits.all_train_classes,
            "key": "sha256 of file content",
        },
        "head": {"kind": head.kind, "params": head.params, "candidates": head.candidates},
        "fine_tune": fine_tuned,
        "consistency": consistency,
        "data": {
            "images": len(data) + len(data.unreadable),
            "readable": len(data),
            "unreadable": len(data.unreadable),
            "unreadable_files": [
                {"path": r.path, "reason": r.reason} for r in data.unreadable[:100]
            ],
            "classes": dict(sorted(Counter(data.labels).items())),
            "commits": commits,
        },
        "seed": options.seed,
        "seconds": round(seconds, 2),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.split("\n")[0])
    p.add_argument("--embeddings", type=Path, default=Path("/pfs/Embed"))
    p.add_argument("--images", type=Path, default=Path("/pfs/flower_photos"))
    p.add_argument("--out", type=Path, default=Path("/pfs/out"))
    p.add_argument(
        "--architecture",
        default=None,
        help="backbone to ship (default: the embeddings' own, else $ARCHITECTURE)",
    )
    p.add_argument(
        "--fine-tune-layers",
        type=int,
        default=0,
        help="unfreeze this many top backbone layers and train on the images (default 0)",
    )
    p.add_argument("--fine-tune-epochs", type=int, default=3)
    p.add_argument("--epochs", type=int, default=200, help="most epochs for the Dense head")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--validation-fraction", type=float, default=0.1)
    p.add_argument("--test-fraction", type=float, default=0.1)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    options = TrainOptions(
        architecture=args.architecture,
        fine_tune_layers=args.fine_tune_layers,
        fine_tune_epochs=args.fine_tune_epochs,
        epochs=args.epochs,
        seed=args.seed,
        validation=args.validation_fraction,
        test=args.test_fraction,
    )

    def body() -> str:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
        metrics = train(args.embeddings, args.images, args.out, options)
        acc = metrics["accuracy"]
        return (
            f"Train done: {metrics['architecture']} {metrics['head']['kind']} head on "
            f"{metrics['splits']['sizes']}; test accuracy "
            f"{'n/a' if acc is None else f'{acc:.3f}'}"
        )

    return stage_main(TRAIN_PIPELINE, body)


if __name__ == "__main__":
    sys.exit(main())
