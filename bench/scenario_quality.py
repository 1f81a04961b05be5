"""Scenario families the audit cannot be tuned to: proportions and seeds drawn at random.

On the 600 flower photos' mobilenet_1.0_224 embeddings (flower_embeddings.py; the edited
copies are real re-saved / resized / cropped photos, embedded once and cached), each family is
built afresh from a master seed (``--seed``), every proportion drawn from its range:

- contaminated: for every ordered pair of classes (c, d), a later commit adds 12 new c photos
  and d photos making 5-40 % of the c folder, all filed under c. Truth: the d photos.
- flips: 2-20 % of the labels flipped at random (no commit information).
- near_copies: a later commit of 30 new photos plus re-saved / resized / cropped copies of
  existing photos making 10-30 % of the commit. Truth: the copies and their originals.
- unreadable: a later commit of 30 new photos and 3-15 unreadable files.
- shrunk: one class cut to 5 % of the others' size. Truth: that class (class level).
- clean: the five classes unchanged (false alarms per image, verdicts not pass), and clean
  commits of 10-30 more photos of one class (batch_contamination must stay quiet).

Per family: per-image precision, recall and F1 of the audit (label_issue and
batch_contamination files for wrong labels, duplicate files for copies, unreadable_file),
against cleanlab's ``find_label_issues`` on a plain 5-fold logistic regression of the same
embeddings (what a cleanlab user would run), and cleanlab's Datalab (``label``,
``near_duplicate``, ``outlier`` on the same probabilities and embeddings) when its extra
dependencies are installed (``pip install 'cleanlab[datalab]'``); mean and worst seed.

Run: ``python bench/scenario_quality.py [--json] [--quick] [--seed 0]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flower_embeddings import load, load_augmented

from auditor.audit import run_audit
from auditor.batches import CommitBatches
from pipelines.records import EmbeddingRecord, EmbeddingSet

REF = {"repo": "flower_photos", "branch": "master", "commit": "bench"}
COMMIT = "5ce0a110" * 4
ARCH = "mobilenet_1.0_224"
#: the edits that are re-saves or crops (mirrored / brightened copies are other pictures)
COPY_EDITS = ("jpeg_q40", "half_size", "crop_90")


class Photos:
    def __init__(self) -> None:
        self.paths, labels, self.sha, self.x = load()
        self.labels = np.array(labels)
        self.name = [p.rsplit("/", 1)[1] for p in self.paths]
        self.classes = sorted(set(labels))
        sources, edits, vectors = load_augmented()
        keep = [i for i, e in enumerate(edits) if e in COPY_EDITS]
        index = {p: i for i, p in enumerate(self.paths)}
        self.copy_of = np.array([index[sources[i]] for i in keep])
        self.copy_edit = [edits[i] for i in keep]
        self.copy_x = vectors[keep]

    def rows(self, label: str) -> np.ndarray:
        return np.flatnonzero(self.labels == label)


class Scenario:
    """Rows of a data set under construction: vectors, folders, paths, the truth."""

    def __init__(self) -> None:
        self.x: list[np.ndarray] = []
        self.labels: list[str] = []
        self.paths: list[str] = []
        self.sha: list[str] = []
        self.truth: list[bool] = []
        self.added: dict[str, str] = {}
        self.unreadable: list[EmbeddingRecord] = []

    def add(self, v, label, path, sha, *, truth=False, commit=None) -> None:
        self.x.append(v)
        self.labels.append(label)
        self.paths.append(path)
        self.sha.append(sha)
        self.truth.append(truth)
        if commit:
            self.added[path] = commit

    def data(self) -> EmbeddingSet:
        return EmbeddingSet(
            paths=list(self.paths),
            labels=list(self.labels),
            sha256=list(self.sha),
            vectors=np.asarray(self.x, np.float32),
            architecture=ARCH,
            unreadable=list(self.unreadable),
        )

    def batches(self) -> CommitBatches | None:
        return CommitBatches([COMMIT], dict(self.added)) if self.added else None


def _photo(sc: Scenario, ph: Photos, i: int, label: str | None = None, **kw) -> None:
    label = label or str(ph.labels[i])
    sc.add(ph.x[i], label, f"/{label}/{ph.name[i]}", ph.sha[i], **kw)


def _prf(flagged: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    tp = int((flagged & truth).sum())
    p = tp / max(int(flagged.sum()), 1)
    r = tp / max(int(truth.sum()), 1)
    return p, r, 2 * p * r / max(p + r, 1e-12)


def _plain_probabilities(x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    cv = StratifiedKFold(5, shuffle=True, random_state=seed)
    return cross_val_predict(model, x, y, cv=cv, method="predict_proba")


def datalab_available() -> bool:
    try:
        from cleanlab import Datalab

        Datalab(data={"label": np.array([0, 1])}, label_name="label")
    except ImportError:
        return False
    return True


def peers(sc: Scenario, seed: int, datalab: bool) -> dict[str, np.ndarray]:
    """Per-image flags of cleanlab find_label_issues and Datalab on the same embeddings."""
    from cleanlab.filter import find_label_issues

    x = np.asarray(sc.x, np.float32)
    classes = sorted(set(sc.labels))
    y = np.searchsorted(classes, sc.labels)
    probs = _plain_probabilities(x, y, seed)
    out = {"cleanlab": find_label_issues(y, probs)}
    if datalab:
        from cleanlab import Datalab

        lab = Datalab(data={"label": y}, label_name="label", verbosity=0)
        lab.find_issues(
            pred_probs=probs,
            features=x,
            issue_types={"label": {}, "near_duplicate": {}, "outlier": {}},
        )
        issues = lab.get_issues()
        for kind in ("label", "near_duplicate", "outlier"):
            out[f"datalab_{kind}"] = issues[f"is_{kind}_issue"].to_numpy(bool)
        out["datalab_any"] = (
            out["datalab_label"] | out["datalab_near_duplicate"] | out["datalab_outlier"]
        )
    return out


def audit(sc: Scenario):
    return run_audit(sc.data(), data_ref=REF, batches=sc.batches())


def _files(result, checks: tuple[str, ...]) -> set[str]:
    return {p for f in result.findings if f.check in checks for p in f.files}


WRONG_LABEL = ("label_issue", "batch_contamination")
COPIES = ("duplicate", "cross_class_duplicate")


def contaminated(ph: Photos, rng: np.random.Generator, c: str, d: str) -> tuple[Scenario, dict]:
    share = float(rng.uniform(0.05, 0.40))
    rc, rd = rng.permutation(ph.rows(c)), rng.permutation(ph.rows(d))
    new_clean = rc[:12]
    m = int(min(60, max(2, round(share * len(rc) / (1 - share)))))
    bad = set(rd[:m].tolist())
    sc = Scenario()
    for i in range(len(ph.x)):
        if i in bad:
            continue
        _photo(sc, ph, i, commit=COMMIT if i in set(new_clean.tolist()) else None)
    for i in rd[:m]:
        _photo(sc, ph, int(i), label=c, truth=True, commit=COMMIT)
    return sc, {"pair": [c, d], "share": round(m / (len(rc) + m), 3), "bad": m}


def flips(ph: Photos, rng: np.random.Generator) -> tuple[Scenario, dict]:
    rate = float(rng.uniform(0.02, 0.20))
    flip = set(rng.choice(len(ph.x), round(rate * len(ph.x)), replace=False).tolist())
    sc = Scenario()
    for i in range(len(ph.x)):
        if i in flip:
            other = str(rng.choice([c for c in ph.classes if c != ph.labels[i]]))
            _photo(sc, ph, i, label=other, truth=True)
        else:
            _photo(sc, ph, i)
    return sc, {"rate": round(rate, 3)}


def near_copies(ph: Photos, rng: np.random.Generator) -> tuple[Scenario, dict]:
    share = float(rng.uniform(0.10, 0.30))
    new = set(rng.choice(len(ph.x), 30, replace=False).tolist())
    m = max(1, round(share * 30 / (1 - share)))
    chosen = rng.choice(len(ph.copy_of), m, replace=False)
    sources = {int(ph.copy_of[j]) for j in chosen}
    sc = Scenario()
    for i in range(len(ph.x)):
        _photo(sc, ph, i, truth=i in sources, commit=COMMIT if i in new else None)
    for j in chosen:
        i = int(ph.copy_of[j])
        label = str(ph.labels[i])
        stem = ph.name[i].rsplit(".", 1)[0]
        sc.add(
            ph.copy_x[j],
            label,
            f"/{label}/{stem}_{ph.copy_edit[j]}.jpg",
            f"{ph.sha[i][:48]}{j:016x}",
            truth=True,
            commit=COMMIT,
        )
    return sc, {"share": round(m / (30 + m), 3), "copies": m}


def unreadable(ph: Photos, rng: np.random.Generator) -> tuple[Scenario, dict]:
    u = int(rng.integers(3, 16))
    new = set(rng.choice(len(ph.x), 30, replace=False).tolist())
    sc = Scenario()
    for i in range(len(ph.x)):
        _photo(sc, ph, i, commit=COMMIT if i in new else None)
    for j in range(u):
        label = str(rng.choice(ph.classes))
        path = f"/{label}/broken_{j}.jpg"
        sc.unreadable.append(
            EmbeddingRecord(
                path,
                label,
                f"{j:064x}",
                10,
                ARCH,
                status="unreadable",
                reason="cannot identify image file",
            )
        )
        sc.added[path] = COMMIT
    return sc, {"unreadable": u}


def shrunk(ph: Photos, rng: np.random.Generator) -> tuple[Scenario, dict]:
    c = str(rng.choice(ph.classes))
    keep = set(rng.choice(ph.rows(c), 6, replace=False).tolist())
    sc = Scenario()
    for i in range(len(ph.x)):
        if ph.labels[i] != c or i in keep:
            _photo(sc, ph, i)
    return sc, {"class": c, "images": 6}


def clean_commit(ph: Photos, rng: np.random.Generator) -> tuple[Scenario, dict]:
    c = str(rng.choice(ph.classes))
    n = int(rng.integers(10, 31))
    new = set(rng.choice(ph.rows(c), n, replace=False).tolist())
    sc = Scenario()
    for i in range(len(ph.x)):
        _photo(sc, ph, i, commit=COMMIT if i in new else None)
    return sc, {"class": c, "added": n}


def _summary(rows: list[dict], methods: list[str]) -> dict:
    out = {"runs": len(rows)}
    for m in methods:
        f1 = [r[m][2] for r in rows if m in r]
        if not f1:
            continue
        out[m] = {
            "precision": round(float(np.mean([r[m][0] for r in rows])), 3),
            "recall": round(float(np.mean([r[m][1] for r in rows])), 3),
            "f1": round(float(np.mean(f1)), 3),
            "worst_f1": round(float(np.min(f1)), 3),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print rows as JSON for bench/run")
    ap.add_argument("--quick", action="store_true", help="a few seeds per family (CI-sized)")
    ap.add_argument("--seed", type=int, default=0, help="master seed of every draw")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    ph = Photos()
    rng = np.random.default_rng([args.seed, 15])
    datalab = datalab_available()
    pairs = [(c, d) for c in ph.classes for d in ph.classes if c != d]
    n = 2 if args.quick else 4
    if args.quick:
        pairs = [pairs[i] for i in rng.choice(len(pairs), 4, replace=False)]
    families: dict[str, list[dict]] = {k: [] for k in ("contaminated", "flips", "near_copies")}
    label_methods = ["ours", "label_issue_only", "cleanlab", "datalab_label", "datalab_any"]
    copy_methods = ["ours", "cleanlab", "datalab_near_duplicate", "datalab_any"]

    def judge(sc: Scenario, result, ours: set[str], seed: int) -> dict:
        truth = np.array(sc.truth)
        row = {"ours": _prf(np.array([p in ours for p in sc.paths]), truth)}
        li = _files(result, ("label_issue",))
        row["label_issue_only"] = _prf(np.array([p in li for p in sc.paths]), truth)
        for name, flags in peers(sc, seed, datalab).items():
            row[name] = _prf(flags, truth)
        return row

    detect = []
    for c, d in pairs:
        seed = int(rng.integers(1 << 31))
        sc, meta = contaminated(ph, np.random.default_rng(seed), c, d)
        result = audit(sc)
        bc = [f for f in result.findings if f.check == "batch_contamination"]
        row = judge(sc, result, _files(result, WRONG_LABEL), seed)
        row.update(meta, seed=seed, verdict=result.verdict)
        row["detected"] = any(f.classes[0] == c for f in bc)
        row["named"] = any(f.classes == [c, d] for f in bc)
        families["contaminated"].append(row)
        detect.append(row)
    for _ in range(n):
        seed = int(rng.integers(1 << 31))
        sc, meta = flips(ph, np.random.default_rng(seed))
        result = audit(sc)
        row = judge(sc, result, _files(result, WRONG_LABEL), seed)
        families["flips"].append({**row, **meta, "seed": seed})
    for _ in range(n):
        seed = int(rng.integers(1 << 31))
        sc, meta = near_copies(ph, np.random.default_rng(seed))
        result = audit(sc)
        row = judge(sc, result, _files(result, COPIES), seed)
        families["near_copies"].append({**row, **meta, "seed": seed})
    unread = []
    for _ in range(max(1, n // 2)):
        seed = int(rng.integers(1 << 31))
        sc, meta = unreadable(ph, np.random.default_rng(seed))
        result = audit(sc)
        found = _files(result, ("unreadable_file",))
        truth = {r.path for r in sc.unreadable}
        unread.append(
            {**meta, "recall": len(found & truth) / len(truth), "extra": len(found - truth)}
        )
    shrink = []
    for _ in range(max(1, n // 2)):
        seed = int(rng.integers(1 << 31))
        sc, meta = shrunk(ph, np.random.default_rng(seed))
        result = audit(sc)
        hit = any(
            f.check == "class_imbalance" and meta["class"] in f.classes for f in result.findings
        )
        shrink.append({**meta, "detected": hit, "verdict": result.verdict})
    clean_fired = []
    for _ in range(4 if args.quick else 12):
        seed = int(rng.integers(1 << 31))
        sc, meta = clean_commit(ph, np.random.default_rng(seed))
        result = audit(sc)
        fired = [f for f in result.findings if f.check == "batch_contamination"]
        clean_fired.append({**meta, "fired": bool(fired), "verdict": result.verdict})
    sc = Scenario()
    for i in range(len(ph.x)):
        _photo(sc, ph, i)
    result = audit(sc)
    clean_flagged = len(_files(result, WRONG_LABEL + COPIES))
    clean_peers = peers(sc, args.seed, datalab)
    elapsed = time.perf_counter() - t0

    summaries = {
        "contaminated": _summary(families["contaminated"], label_methods),
        "flips": _summary(families["flips"], label_methods),
        "near_copies": _summary(families["near_copies"], copy_methods),
    }
    big = [r for r in detect if r["share"] >= 0.2]
    rows = []
    for fam, methods in (
        ("contaminated", label_methods),
        ("flips", label_methods),
        ("near_copies", copy_methods),
    ):
        s = summaries[fam]
        peer = "cleanlab" if fam != "near_copies" else "datalab_near_duplicate"
        if peer not in s:
            peer = "cleanlab"
        others = "; ".join(
            f"{m} F1 {s[m]['f1']:.3f} (worst {s[m]['worst_f1']:.3f})" for m in methods[1:] if m in s
        )
        rows.append(
            dict(
                name=f"scenarios: {fam} per-image F1, ours (vs {peer})",
                figure=s["ours"]["f1"],
                baseline=s[peer]["f1"],
                unit="F1",
                notes=f"{s['runs']} seeds; ours P {s['ours']['precision']:.3f} R "
                f"{s['ours']['recall']:.3f}, worst F1 {s['ours']['worst_f1']:.3f}; {others}",
            )
        )
    rows += [
        dict(
            name="scenarios: batch_contamination finds batches >= 20% of the folder",
            figure=sum(r["detected"] for r in big),
            baseline=len(big),
            unit="seeds",
            notes=f"names the right other class in {sum(r['named'] for r in big)}; all "
            f"shares: {sum(r['detected'] for r in detect)}/{len(detect)}",
        ),
        dict(
            name="scenarios: batch_contamination fires on clean same-class commits",
            figure=sum(r["fired"] for r in clean_fired),
            baseline=len(clean_fired),
            unit="commits",
            notes="verdicts not pass: "
            f"{sum(r['verdict'] != 'pass' for r in clean_fired)}/{len(clean_fired)}",
        ),
        dict(
            name="scenarios: unreadable files found (recall)",
            figure=round(float(np.mean([r["recall"] for r in unread])), 3),
            baseline=1.0,
            unit="recall",
            notes=f"{len(unread)} seeds; other files flagged unreadable: "
            f"{sum(r['extra'] for r in unread)}; cleanlab/Datalab never see them",
        ),
        dict(
            name="scenarios: class shrunk to 5% -> class_imbalance",
            figure=sum(r["detected"] for r in shrink),
            baseline=len(shrink),
            unit="seeds",
            notes=f"classes {[r['class'] for r in shrink]}",
        ),
        dict(
            name="scenarios: clean five classes, images flagged (ours vs cleanlab)",
            figure=clean_flagged,
            baseline=int(clean_peers["cleanlab"].sum()),
            unit="images of 600",
            notes=f"verdict {result.verdict}; Datalab any: "
            + (str(int(clean_peers["datalab_any"].sum())) if datalab else "not installed")
            + f"; run {elapsed:.0f}s",
        ),
    ]
    for r in rows:
        r["ratio"] = None if not r["baseline"] else round(r["figure"] / r["baseline"], 3)
    details = {
        "summaries": summaries,
        "families": families,
        "unreadable": unread,
        "shrunk": shrink,
        "clean_commits": clean_fired,
        "datalab": datalab,
        "seconds": round(elapsed, 1),
    }
    if args.json:
        print(json.dumps({"rows": rows, "details": details}, default=float))
    else:
        for r in rows:
            print(f"{r['name']}: {r['figure']} vs {r['baseline']} {r['unit']} ({r['notes']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
