"""What provenance inside the model costs: latency, size, stamping and checking time.

Builds MobileNet v1 (alpha 0.25 by default, ImageNet weights offline) with a 5-class softmax
head, converts it with ``tf.lite.TFLiteConverter``, stamps it with Tulip's manifest and
TFLITE_METADATA, and measures, each against a baseline from the same run:

* single-thread LiteRT latency of the stamped model vs. the converter's output (goal ~1.0);
* file size, stamped vs. converter output;
* ``embed_manifest`` time vs. the conversion itself;
* ``verify`` (what ``tulip identify`` runs) vs. a plain sha256 of the file;
* each app's preprocessing per photo vs. the pipeline's (decode + resize + normalise).

    python bench/mobile_export.py [--alpha 0.25] [--invokes 200] [--images 30] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

DATA = Path(os.environ.get("TULIP_SHARED", "/work/shared")) / "data" / "flower_photos"


def build_model(alpha: float) -> tuple[bytes, float]:
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    backbone = keras.applications.MobileNet(
        input_shape=(224, 224, 3),
        alpha=alpha,
        weights="imagenet",
        include_top=False,
        pooling="avg",
    )
    inputs = keras.Input((224, 224, 3))
    model = keras.Model(inputs, keras.layers.Dense(5, activation="softmax")(backbone(inputs)))
    t0 = time.perf_counter()
    content = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    return bytes(content), time.perf_counter() - t0


def median_invoke_ms(content: bytes, invokes: int) -> float:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content, num_threads=1)
    interpreter.allocate_tensors()
    index = interpreter.get_input_details()[0]["index"]
    x = np.random.default_rng(0).uniform(-1, 1, (1, 224, 224, 3)).astype(np.float32)
    interpreter.set_tensor(index, x)
    interpreter.invoke()
    times = []
    for _ in range(invokes):
        t0 = time.perf_counter()
        interpreter.invoke()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def interleaved_latency(a: bytes, b: bytes, invokes: int, rounds: int = 5) -> tuple[float, float]:
    """Medians over alternating rounds, so that machine noise hits both models alike."""
    ma, mb = [], []
    for _ in range(rounds):
        ma.append(median_invoke_ms(a, invokes // rounds))
        mb.append(median_invoke_ms(b, invokes // rounds))
    return statistics.median(ma), statistics.median(mb)


def timed(fn, repeats: int = 5) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--alpha", type=float, default=0.25)
    p.add_argument("--invokes", type=int, default=200)
    p.add_argument("--images", type=int, default=30)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

    from mobile.metadata import AuditRef, CommitRef, Provenance, embed_manifest, verify
    from mobile.preprocess import ANDROID, IOS, PIPELINE, preprocess

    with contextlib.redirect_stdout(sys.stderr):  # the converter prints; keep --json clean
        original, convert_s = build_model(args.alpha)
    labels = ["daisy", "dandelion", "roses", "sunflowers", "tulips"]
    provenance = Provenance(
        model=CommitRef("Convert", "c" * 32),
        data=(CommitRef("flower_photos", "f" * 32),),
        audit=AuditRef("pass", "Audit", "a" * 32),
        architecture=f"mobilenet_{args.alpha}_224 float32",
    )
    stamp_s = timed(lambda: embed_manifest(original, provenance=provenance, labels=labels))
    stamped = embed_manifest(original, provenance=provenance, labels=labels).content
    verify_s = timed(lambda: verify(stamped))
    sha_s = timed(lambda: hashlib.sha256(stamped).hexdigest())
    stamped_ms, original_ms = interleaved_latency(stamped, original, args.invokes)

    photos = sorted(DATA.glob("*/*.jpg"))[:: max(1, 600 // args.images)][: args.images]
    prep = {}
    for spec in (PIPELINE, ANDROID, IOS):
        prep[spec.name] = timed(lambda s=spec: [preprocess(f, s) for f in photos], 3)
        prep[spec.name] *= 1e3 / len(photos)

    rows = [
        {
            "name": "mobile: stamped model latency (1 thread)",
            "figure": round(stamped_ms, 3),
            "baseline": round(original_ms, 3),
            "ratio": round(stamped_ms / original_ms, 3),
            "unit": "ms/invoke",
            "notes": "baseline: converter output; goal ratio ~1.0",
        },
        {
            "name": "mobile: stamped file size",
            "figure": len(stamped),
            "baseline": len(original),
            "ratio": round(len(stamped) / len(original), 4),
            "unit": "bytes",
            "notes": "manifest + TFLITE_METADATA + packed labels.txt",
        },
        {
            "name": "mobile: embed_manifest time",
            "figure": round(stamp_s, 4),
            "baseline": round(convert_s, 4),
            "ratio": round(stamp_s / convert_s, 4),
            "unit": "s",
            "notes": "baseline: TFLiteConverter.convert of the same model",
        },
        {
            "name": "mobile: verify (identify) time",
            "figure": round(verify_s, 4),
            "baseline": round(sha_s, 4),
            "ratio": round(verify_s / sha_s, 2),
            "unit": "s",
            "notes": "baseline: sha256 of the file",
        },
    ]
    for name in ("android", "ios"):
        rows.append(
            {
                "name": f"mobile: {name} preprocessing per photo",
                "figure": round(prep[name], 3),
                "baseline": round(prep["pipeline"], 3),
                "ratio": round(prep[name] / prep["pipeline"], 3),
                "unit": "ms/photo",
                "notes": f"baseline: the pipeline's (Pillow) preprocessing; {len(photos)} photos",
            }
        )
    machine = {"python": platform.python_version(), "cpus": os.cpu_count()}
    if args.json:
        json.dump({"machine": machine, "rows": rows}, sys.stdout, indent=2)
        print()
    else:
        print(f"{'name':48} {'figure':>10} {'baseline':>10} {'ratio':>8}  unit")
        for row in rows:
            print(
                f"{row['name']:48} {row['figure']:>10.4g} {row['baseline']:>10.4g} "
                f"{row['ratio']:>8.4g}  {row['unit']}  ({row['notes']})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
