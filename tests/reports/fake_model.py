"""Stand-ins for the Train and Convert stages in report tests: they write the documents the
model page reads (``metrics.json``, ``retrained_labels.txt``, ``conversion.json``) with the
shapes training/train.py and conversion/convert.py write, without TensorFlow.

    python fake_model.py train --data /pfs/flower_photos --out /pfs/out
    python fake_model.py convert --model /pfs/Train --out /pfs/out
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def train(data: Path, out: Path) -> None:
    labels = sorted(p.name for p in data.iterdir() if p.is_dir())
    n = len(labels)
    matrix = [[5 if i == j else (1 if j == (i + 1) % n else 0) for j in range(n)] for i in range(n)]
    test = {
        "n": sum(map(sum, matrix)),
        "accuracy": 5 * n / sum(map(sum, matrix)),
        "loss": 0.41,
        "per_class": {label: {"n": 6, "accuracy": 5 / 6} for label in labels},
        "confusion_matrix": {
            "labels": labels,
            "rows": "true",
            "columns": "predicted",
            "matrix": matrix,
        },
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "retrained_labels.txt").write_text("".join(f"{x}\n" for x in labels))
    (out / "model.keras").write_bytes(b"not really a keras model")
    metrics = {
        "schema": "tulip.metrics/v1",
        "architecture": "mobilenet_0.25_224",
        "labels": labels,
        "test": test,
        "validation": {**test, "accuracy": 0.8},
        "train": {**test, "accuracy": 0.99},
        "accuracy": test["accuracy"],
        "splits": {"sizes": {"train": 40, "validation": 5, "test": 6 * n}},
        "head": {"kind": "logistic", "params": {"C": 1.0}, "candidates": []},
        "data": {"images": 6 * n, "readable": 6 * n, "unreadable": 0, "classes": {}},
        "seconds": 1.5,
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))


def convert(model: Path, out: Path) -> None:
    labels = (model / "retrained_labels.txt").read_text().split()
    variants = {
        "float32": {"size_bytes": 880_000, "agreement": 1.0, "accuracy": 0.83,
                    "latency_ms": {"median": 4.1, "p90": 4.9, "mean": 4.2, "n": 30}},
        "int8": {"size_bytes": 250_000, "agreement": 0.967, "accuracy": 0.8,
                 "latency_ms": {"median": 2.2, "p90": 2.6, "mean": 2.3, "n": 30},
                 "size_ratio_to_float32": 0.284},
    }  # fmt: skip
    doc = {
        "schema": "tulip.conversion/v1",
        "labels": labels,
        "variants": variants,
        "published": {"variant": "int8", "file": "optimized_graph.lite", "size_bytes": 250_000,
                      "agreement": 0.967, "accuracy": 0.8},
        "evaluation": {"split": "test", "images": 30, "keras_accuracy": 0.83},
        "audit": None,
    }  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    (out / "conversion.json").write_text(json.dumps(doc, indent=1))
    (out / "optimized_graph.lite").write_bytes(b"TFL3 fake")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["train", "convert"])
    p.add_argument("--data", type=Path)
    p.add_argument("--model", type=Path)
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args(argv)
    if a.mode == "train":
        train(a.data, a.out)
    else:
        convert(a.model, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
