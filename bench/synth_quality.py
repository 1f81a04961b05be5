"""Does the seed story come out right on generated flowers? (tulip.synth, issue 7)

The offline demo falls back to ``tulip.synth`` images exactly when real photos and ImageNet
weights are missing, so this measures the generated set under three featurisers:

- ``imagenet``: keras MobileNet v1 alpha 0.25, ImageNet weights, pooled (the demo's backbone);
- ``random``: the same network with seeded random weights (``weights=None``), what a fallback
  without weights would have;
- ``colour``: ``tulip.synth.colour_histogram``, a TF-free HSV histogram.

For each it reports (1) 5-fold logistic-regression accuracy over the five classes, (2) how
often "orchids" (tulip generator, own random stream) are called tulips by a classifier trained
on the five classes, and (3) cross-validated pairwise AUCs: orchids vs tulips (should be about
0.5) and the worst pair of genuinely different classes (should be high).

The baseline for each figure is the same figure on the real flower photos, measured in the
same run, with half of the real tulips playing the orchids. Throughput of the generator is
compared with decoding the real JPEGs. Images go through Pillow RGB -> bilinear 224x224 ->
(x - 127.5) / 127.5, as in the Embed stage.

    python bench/synth_quality.py [--per-class 60] [--json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tulip import synth

REAL = Path(os.environ.get("TULIP_BENCH_FLOWERS", "/work/shared/data/flower_photos"))
CLASSES = list(synth.DEFAULT_CLASSES)
LOOKALIKE = "orchids"
FEATURISERS = ("imagenet", "random", "colour")


@dataclass
class Dataset:
    """Images as paths with labels; ``orchids`` rows are the lookalike class."""

    name: str
    paths: list[Path]
    labels: list[str]


def synthetic(root: Path, per_class: int, seed: int) -> tuple[Dataset, float]:
    """Generate the five classes plus orchids; return the set and images per second."""
    start = time.process_time()
    written = synth.generate(root, classes=[*CLASSES, LOOKALIKE], per_class=per_class, seed=seed)
    rate = per_class * (len(CLASSES) + 1) / (time.process_time() - start)
    paths = [p for name in [*CLASSES, LOOKALIKE] for p in written[name]]
    labels = [name for name in [*CLASSES, LOOKALIKE] for _ in written[name]]
    return Dataset("synthetic", paths, labels), rate


def real(per_class: int) -> Dataset | None:
    """The shared real photos, ``per_class`` per class; a disjoint share of tulips plays orchids."""
    if not all((REAL / c).is_dir() for c in CLASSES):
        return None
    paths, labels = [], []
    for name in CLASSES:
        files = sorted((REAL / name).glob("*.jpg"))
        take = min(per_class, len(files) // 2) if name == "tulips" else per_class
        paths += files[:take]
        labels += [name] * len(files[:take])
        if name == "tulips":
            extra = files[take : 2 * take]
            paths += extra
            labels += [LOOKALIKE] * len(extra)
    return Dataset("real", paths, labels)


def decode(paths: list[Path]) -> np.ndarray:
    from PIL import Image

    out = np.empty((len(paths), 224, 224, 3), dtype=np.float32)
    for i, path in enumerate(paths):
        with Image.open(path) as im:
            rgb = im.convert("RGB").resize((224, 224), Image.Resampling.BILINEAR)
        out[i] = (np.asarray(rgb, dtype=np.float32) - 127.5) / 127.5
    return out


def backbone(kind: str, alpha: float, seed: int):
    import keras

    keras.utils.set_random_seed(seed)
    weights = "imagenet" if kind == "imagenet" else None
    return keras.applications.MobileNet(
        alpha=alpha, include_top=False, pooling="avg", weights=weights, input_shape=(224, 224, 3)
    )


def featurise(dataset: Dataset, kind: str, models: dict) -> np.ndarray:
    if kind == "colour":
        from PIL import Image

        feats = []
        for path in dataset.paths:
            with Image.open(path) as im:
                feats.append(synth.colour_histogram(im))
        return np.stack(feats)
    pixels = decode(dataset.paths)
    return np.asarray(models[kind].predict(pixels, batch_size=32, verbose=0), dtype=np.float64)


def _classifier(c: float = 1.0):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000))


def story(x: np.ndarray, labels: list[str], seed: int) -> dict:
    """The three figures of the seed story on one embedding matrix."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict, cross_val_score

    y = np.array(labels)
    five = np.isin(y, CLASSES)
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    accuracy = cross_val_score(_classifier(), x[five], y[five], cv=folds).mean()

    model = _classifier().fit(x[five], y[five])
    called = model.predict(x[y == LOOKALIKE])
    as_tulips = float(np.mean(called == "tulips"))

    aucs = {}
    for a, b in itertools.combinations([*CLASSES, LOOKALIKE], 2):
        rows = np.isin(y, [a, b])
        target = (y[rows] == b).astype(int)
        # Strong regularisation: with few images per class an unregularised LR memorises noise.
        score = cross_val_predict(
            _classifier(c=0.05), x[rows], target, cv=folds, method="decision_function"
        )
        aucs[(a, b)] = float(roc_auc_score(target, score))
    lookalike_auc = aucs[("tulips", LOOKALIKE)]
    distinct = {pair: auc for pair, auc in aucs.items() if pair != ("tulips", LOOKALIKE)}
    worst = min(distinct, key=distinct.get)
    return {
        "accuracy_5fold": float(accuracy),
        "orchids_called_tulips": as_tulips,
        "auc_orchids_vs_tulips": lookalike_auc,
        "auc_min_distinct": distinct[worst],
        "worst_distinct_pair": "/".join(worst),
        "auc_pairs": {"/".join(pair): round(v, 4) for pair, v in aucs.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-class", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--alpha", type=float, default=0.25)
    parser.add_argument("--featurisers", default=",".join(FEATURISERS))
    parser.add_argument("--json", action="store_true", help="print rows as JSON")
    args = parser.parse_args(argv)
    kinds = [k for k in args.featurisers.split(",") if k]

    with tempfile.TemporaryDirectory(prefix="synth_quality_") as tmp:
        synthetic_set, gen_rate = synthetic(Path(tmp), args.per_class, args.seed)
        real_set = real(args.per_class)
        start = time.process_time()
        if real_set is not None:
            decode(real_set.paths)
            decode_rate = len(real_set.paths) / (time.process_time() - start)
        else:
            decode_rate = float("nan")
        models = {k: backbone(k, args.alpha, args.seed) for k in kinds if k != "colour"}
        results: dict[str, dict[str, dict]] = {}
        for kind in kinds:
            for dataset in (synthetic_set, real_set):
                if dataset is None:
                    continue
                x = featurise(dataset, kind, models)
                figures = story(x, dataset.labels, args.seed)
                # Random MobileNet activations shrink block by block; show how far.
                figures["feature_std"] = float(x.std())
                results.setdefault(kind, {})[dataset.name] = figures

    rows = [
        {
            "name": "synth: generator throughput (vs decoding real JPEGs to 224)",
            "figure": round(gen_rate, 1),
            "baseline": round(decode_rate, 1),
            "ratio": round(gen_rate / decode_rate, 3) if decode_rate == decode_rate else None,
            "unit": "images/s",
            "notes": f"{args.per_class}/class x 6 classes, 240px; CPU time of one thread, "
            "so other load on the machine barely moves it",
        }
    ]
    figures = [
        ("accuracy_5fold", "5-fold LR accuracy, 5 classes", "accuracy"),
        ("orchids_called_tulips", "orchids classified as tulips", "fraction"),
        ("auc_orchids_vs_tulips", "CV AUC orchids vs tulips (want ~0.5)", "AUC"),
        ("auc_min_distinct", "worst CV AUC of two distinct classes (want high)", "AUC"),
    ]
    backbone_name = f"mobilenet_{args.alpha}_224"
    for kind, per_set in results.items():
        label = {
            "imagenet": f"{backbone_name} imagenet",
            "random": f"{backbone_name} random",
            "colour": "colour histogram",
        }[kind]
        syn, base = per_set["synthetic"], per_set.get("real")
        for key, text, unit in figures:
            figure = syn[key]
            baseline = base[key] if base else None
            notes = "baseline: real flower_photos, half the tulips as orchids"
            if kind == "random":
                notes += f"; pooled feature std {syn['feature_std']:.1e}"
            if key == "auc_min_distinct":
                notes = f"worst pair {syn['worst_distinct_pair']}"
                if base:
                    notes += f"; real worst {base['worst_distinct_pair']}"
            rows.append(
                {
                    "name": f"synth [{label}]: {text}",
                    "figure": round(figure, 4),
                    "baseline": None if baseline is None else round(baseline, 4),
                    "ratio": None if not baseline else round(figure / baseline, 3),
                    "unit": unit,
                    "notes": notes,
                }
            )
    machine = f"{platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}"
    if args.json:
        json.dump({"machine": machine, "rows": rows, "details": results}, sys.stdout, indent=2)
        print()
    else:
        print(f"# synth quality ({machine}); per class {args.per_class}, seed {args.seed}")
        print(f"{'figure':>9} {'baseline':>9} {'ratio':>7}  name")
        for row in rows:
            base = "-" if row["baseline"] is None else f"{row['baseline']:.4g}"
            ratio = "-" if row["ratio"] is None else f"{row['ratio']:.3g}"
            print(f"{row['figure']:>9.4g} {base:>9} {ratio:>7}  {row['name']}  ({row['notes']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
