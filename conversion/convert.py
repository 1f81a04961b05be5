"""The Convert stage: the trained model to ``optimized_graph.lite``, gated and verified.

    python -m conversion.convert --model /pfs/Train --images /pfs/flower_photos
        [--audit /pfs/Audit] --out /pfs/out [--variant auto|float32|float16|dynamic|int8]
        [--min-agreement 0.97]

1. **Gate.** With ``--audit``, the Audit verdict is read first; a failing or missing audit
   stops the stage before any work, and nothing is written.
2. **Convert** ``model.keras`` to every variant (``conversion.variants``); ``int8`` is
   calibrated on images of the training split (``splits.json``). A variant that cannot be
   built or run is recorded with its error and left out: int8 of the ``colour_histogram``
   backbone, for one, which says so itself (``variants.int8_blocker``).
3. **Verify** each variant on the test split with ai-edge-litert, single-threaded: top-1
   agreement with the Keras model, test accuracy, latency per image, size.
4. **Publish** one variant as ``optimized_graph.lite`` (and ``labels.txt`` beside it) and
   describe everything in ``conversion.json``. ``--variant auto`` (the default) publishes the
   first of int8, dynamic, float16, float32 whose agreement meets ``--min-agreement``: the
   smallest and fastest model the apps can run unchanged that still behaves like the model
   that was trained. A named variant is published only if it meets the threshold.

When the published variant falls under the threshold the stage exits non-zero, its last
stderr line says why, and no ``optimized_graph.lite`` is written.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.errors import TulipError
from pipelines.layout import (
    CONVERSION_FILE,
    CONVERT,
    LABELS_FILE,
    METRICS_FILE,
    MODEL_FILE,
    SPLITS_FILE,
    TFLITE_FILE,
    TFLITE_LABELS_FILE,
    VARIANTS_DIR,
    label_of,
    mounted,
)
from training.images import UnreadableImage, decode
from training.runtime import stage_main

from .gate import GateDecision, check_gate
from .variants import VARIANTS

log = logging.getLogger(__name__)

SCHEMA = "tulip.conversion/v1"
AUTO_ORDER = ("int8", "dynamic", "float16", "float32")
DEFAULT_MIN_AGREEMENT = 0.97
NORMALIZATION = "(x - 127.5) / 127.5"


class ConversionFailed(TulipError):
    """No variant can be published: the model is missing, or TFLite disagrees with Keras."""


@dataclass
class ConvertOptions:
    variant: str = "auto"
    min_agreement: float = DEFAULT_MIN_AGREEMENT
    variants: tuple[str, ...] = VARIANTS
    calibration_images: int = 100
    keep_variants: bool = False


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _load_split(model_dir: Path) -> dict[str, list[str]]:
    path = mounted(model_dir, SPLITS_FILE)
    if not path.is_file():
        raise ConversionFailed(f"no splits.json in {model_dir}; is it the Train pipeline's output?")
    files = json.loads(path.read_text(encoding="utf-8"))["files"]
    out: dict[str, list[tuple[str, str]]] = {"train": [], "validation": [], "test": []}
    for repo_path, entry in files.items():
        out.setdefault(entry["split"], []).append((entry["sha256"], repo_path))
    # Ordered by content hash: a deterministic, class-mixed order.
    return {s: [p for _, p in sorted(v)] for s, v in out.items()}


def _decode_all(images: Path, repo_paths: list[str], *, size, limit: int | None = None):
    pixels, kept = [], []
    for rp in repo_paths:
        if limit is not None and len(pixels) >= limit:
            break
        try:
            pixels.append(decode(images / rp.lstrip("/"), size=size))
        except (UnreadableImage, OSError):
            continue
        kept.append(rp)
    h, w = size[1], size[0]
    return (np.stack(pixels) if pixels else np.zeros((0, h, w, 3), np.uint8)), kept


def _normalized(pixels: np.ndarray) -> np.ndarray:
    return (pixels.astype(np.float32) - 127.5) / 127.5


def _data_commit(images: Path, model_dir: Path) -> str | None:
    env = os.environ.get(f"{images.name}_COMMIT")
    if env:
        return env
    metrics = mounted(model_dir, METRICS_FILE)
    if metrics.is_file():
        commits = json.loads(metrics.read_text(encoding="utf-8")).get("data", {}).get("commits", {})
        return commits.get(images.name)
    return None


def choose_variant(results: dict[str, dict], *, requested: str, min_agreement: float) -> str:
    """The variant to publish, or ConversionFailed naming the agreement that fell short."""
    if requested != "auto":
        r = results[requested]
        if r["agreement"] is None or r["agreement"] < min_agreement:
            raise ConversionFailed(
                f"{requested} agrees with the Keras model on {_pct(r['agreement'])} of "
                f"{r['images']} test images, under the threshold of {_pct(min_agreement)}; "
                "not publishing it (try --variant float32, or lower --min-agreement)"
            )
        return requested
    for v in AUTO_ORDER:
        if v in results and (results[v]["agreement"] or 0.0) >= min_agreement:
            return v
    summary = ", ".join(f"{v} {_pct(results[v]['agreement'])}" for v in AUTO_ORDER if v in results)
    raise ConversionFailed(
        f"no TFLite variant agrees with the Keras model on at least {_pct(min_agreement)} of the "
        f"test images ({summary}); not publishing optimized_graph.lite"
    )


def _last_line(error: Exception) -> str:
    """The telling part of a converter or LiteRT error, whose text can run to pages."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1][:300] if lines else type(error).__name__


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def convert_stage(
    model_dir: Path,
    images: Path,
    out: Path,
    *,
    audit: Path | None = None,
    options: ConvertOptions | None = None,
) -> dict:
    """Gate, convert, verify and publish; returns the conversion.json dict."""
    options = options or ConvertOptions()
    if options.variant != "auto" and options.variant not in VARIANTS:
        raise ConversionFailed(
            f"unknown variant {options.variant!r}; choose auto or one of {', '.join(VARIANTS)}"
        )
    unknown = sorted(set(options.variants) - set(VARIANTS))
    if unknown:
        raise ConversionFailed(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    variants = tuple(v for v in VARIANTS if v in options.variants or v == options.variant)
    gate: GateDecision | None = None
    if audit is not None:
        gate = check_gate(audit, data_commit=_data_commit(images, model_dir))

    model_path = mounted(model_dir, MODEL_FILE)
    labels_path = mounted(model_dir, LABELS_FILE)
    for p in (model_path, labels_path):
        if not p.is_file():
            raise ConversionFailed(f"no {p.name} in {model_dir}; run the Train pipeline first")
    labels = labels_path.read_text(encoding="utf-8").split()
    splits = _load_split(model_dir)

    import keras

    from training.backbones import custom_objects

    t0 = time.perf_counter()
    model = keras.models.load_model(model_path, compile=False, custom_objects=custom_objects())
    h, w = (int(v) for v in model.input_shape[1:3])
    size = (w, h)
    if model.output_shape[-1] != len(labels):
        raise ConversionFailed(
            f"{model_path.name} has {model.output_shape[-1]} outputs but {labels_path.name} lists "
            f"{len(labels)} labels; re-run Train"
        )

    eval_split = "test" if splits.get("test") else "validation"
    eval_px, eval_paths = _decode_all(images, splits.get(eval_split, []), size=size)
    if not len(eval_px):
        raise ConversionFailed(
            f"no decodable test or validation images under {images} to verify the conversion on; "
            "add images (about 10% of them land in each held-out split)"
        )
    index = {label: i for i, label in enumerate(labels)}
    y_eval = np.array([index.get(label_of(p), -1) for p in eval_paths])
    x_eval = _normalized(eval_px)
    reference = np.concatenate(
        [np.asarray(model(x_eval[i : i + 32], training=False)) for i in range(0, len(x_eval), 32)]
    )
    keras_accuracy = float(np.mean(reference.argmax(1) == y_eval))

    calib_px, _ = _decode_all(
        images, splits.get("train", []), size=size, limit=options.calibration_images
    )

    def representative():
        for px in calib_px:
            yield _normalized(px[None])

    from .evaluate import accuracy, agreement, run_tflite
    from .variants import convert_with_report

    blobs: dict[str, bytes] = {}
    results: dict[str, dict] = {}
    for v in variants:
        if v == "int8" and not len(calib_px):
            results[v] = {
                "error": "no training images to calibrate int8 on",
                "agreement": None,
                "images": 0,
            }
            continue
        tc = time.perf_counter()
        try:
            conversion = convert_with_report(model, v, representative=representative)
            blob = conversion.blob
            conversion_s = time.perf_counter() - tc
            run = run_tflite(blob, x_eval, num_threads=1)
        except Exception as e:  # TFLite's converter and kernels raise anything; others may do
            reason = _last_line(e)
            log.warning("%s: cannot be built or run (%s); trying the other variants", v, reason)
            results[v] = {"error": f"{type(e).__name__}: {reason}", "agreement": None, "images": 0}
            continue
        blobs[v] = blob
        results[v] = {
            "size_bytes": len(blob),
            "sha256": _sha256(blob),
            "agreement": agreement(run.probabilities, reference),
            "accuracy": accuracy(run.probabilities, y_eval),
            "latency_ms": run.latency(),
            "images": len(x_eval),
            "input": {"dtype": run.input_dtype, "shape": run.input_shape},
            "output": {"dtype": run.output_dtype},
            "conversion_seconds": round(conversion_s, 2),
        }
        if v == "int8":
            results[v]["float_layers"] = conversion.float_layers
            results[v]["bias_correction"] = conversion.bias_correction
        log.info(
            "%s: %d bytes, agreement %s, accuracy %s, median %.2f ms",
            v,
            len(blob),
            _pct(results[v]["agreement"]),
            _pct(results[v]["accuracy"]),
            results[v]["latency_ms"]["median"] or 0.0,
        )
    if "float32" in results and results["float32"].get("size_bytes"):
        base = results["float32"]["size_bytes"]
        for r in results.values():
            if r.get("size_bytes"):
                r["size_ratio_to_float32"] = round(r["size_bytes"] / base, 4)

    report = {
        "schema": SCHEMA,
        "published": None,
        "labels": labels,
        "policy": {
            "requested": options.variant,
            "auto_order": list(AUTO_ORDER),
            "min_agreement": options.min_agreement,
        },
        "interface": {
            "input": {"shape": [1, h, w, 3], "dtype": "float32", "normalization": NORMALIZATION},
            "output": {"shape": [1, len(labels)], "dtype": "float32", "meaning": "softmax"},
        },
        "evaluation": {
            "split": eval_split,
            "images": len(x_eval),
            "keras_accuracy": keras_accuracy,
            "calibration_split": "train",
            "calibration_images": len(calib_px),
            "latency": "ai-edge-litert, num_threads=1, one image per invoke",
        },
        "variants": results,
        "model": {
            "file": model_path.name,
            "sha256": _sha256(model_path.read_bytes()),
            "labels_sha256": _sha256(labels_path.read_bytes()),
            "data_commit": _data_commit(images, model_dir),
        },
        "audit": gate.to_dict() if gate else None,
        "seconds": None,
    }
    out.mkdir(parents=True, exist_ok=True)
    try:
        chosen = choose_variant(
            results, requested=options.variant, min_agreement=options.min_agreement
        )
    except ConversionFailed as e:
        report["failure"] = str(e)
        report["seconds"] = round(time.perf_counter() - t0, 2)
        mounted(out, CONVERSION_FILE).write_text(json.dumps(report, indent=1), encoding="utf-8")
        raise
    blob = blobs[chosen]
    report["published"] = {
        "variant": chosen,
        "file": TFLITE_FILE.lstrip("/"),
        "size_bytes": len(blob),
        "sha256": _sha256(blob),
        "agreement": results[chosen]["agreement"],
        "accuracy": results[chosen]["accuracy"],
    }
    report["seconds"] = round(time.perf_counter() - t0, 2)
    published = mounted(out, TFLITE_FILE)
    tmp = published.with_name(published.name + ".tmp")
    tmp.write_bytes(blob)
    tmp.replace(published)
    shutil.copyfile(labels_path, mounted(out, TFLITE_LABELS_FILE))
    if options.keep_variants:
        kept = mounted(out, VARIANTS_DIR)
        kept.mkdir(exist_ok=True)
        for v, b in blobs.items():
            (kept / f"{v}.tflite").write_bytes(b)
    mounted(out, CONVERSION_FILE).write_text(json.dumps(report, indent=1), encoding="utf-8")
    return report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m conversion.convert", description=__doc__.split("\n")[0]
    )
    p.add_argument("--model", type=Path, default=Path("/pfs/Train"), help="Train's output")
    p.add_argument("--images", type=Path, default=Path("/pfs/flower_photos"))
    p.add_argument("--audit", type=Path, default=None, help="Audit's output (the gate)")
    p.add_argument("--out", type=Path, default=Path("/pfs/out"))
    p.add_argument("--variant", default="auto", choices=("auto", *VARIANTS))
    p.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help="comma-separated variants to build and measure (default: all)",
    )
    p.add_argument("--min-agreement", type=float, default=DEFAULT_MIN_AGREEMENT)
    p.add_argument("--calibration-images", type=int, default=100)
    p.add_argument("--keep-variants", action="store_true", help="also write variants/*.tflite")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    options = ConvertOptions(
        variant=args.variant,
        min_agreement=args.min_agreement,
        variants=tuple(v.strip() for v in args.variants.split(",") if v.strip()),
        calibration_images=args.calibration_images,
        keep_variants=args.keep_variants,
    )

    def body() -> str:
        report = convert_stage(args.model, args.images, args.out, audit=args.audit, options=options)
        pub = report["published"]
        return (
            f"Convert done: published {pub['variant']} ({pub['size_bytes']:,} bytes, agreement "
            f"{_pct(pub['agreement'])}, test accuracy {_pct(pub['accuracy'])})"
        )

    return stage_main(CONVERT, body)


if __name__ == "__main__":
    sys.exit(main())
