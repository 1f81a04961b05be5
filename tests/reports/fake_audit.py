"""A tiny stand-in for the Audit stage, run by the local engine in report tests.

It reads real JPEGs from /pfs/<data input>, measures two honest image features (mean colour
hue proxy and brightness) as a 2-D "embedding", and writes a realistic ``audit.json``
(``tulip.audit/v1`` plus per-class stats, an overlap matrix and a projection) and, through
``reports.standalone``, the ``report.html`` the real stage writes. When both ``orchids`` and
``tulips`` exist it reports their ``class_overlap`` (fail), blamed on the data commit.

    python fake_audit.py --data /pfs/flower_photos --repo flower_photos --out /pfs/out
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from PIL import Image


def features(path: Path) -> tuple[float, float] | None:
    try:
        with Image.open(path) as im:
            im.draft("RGB", (64, 64))
            small = im.convert("RGB").resize((16, 16))
    except OSError:
        return None
    px = list(small.getdata())
    r = sum(p[0] for p in px) / len(px)
    g = sum(p[1] for p in px) / len(px)
    b = sum(p[2] for p in px) / len(px)
    return (r - g) / 255.0, (r + g + b) / (3 * 255.0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--repo", required=True)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    commit = os.environ.get(f"{args.repo}_COMMIT")
    classes: dict[str, list[str]] = {}
    points = []
    unreadable = []
    for f in sorted(args.data.rglob("*")):
        if not f.is_file():
            continue
        rel = "/" + f.relative_to(args.data).as_posix()
        label = rel.strip("/").split("/")[0]
        feat = features(f)
        if feat is None:
            unreadable.append(rel)
            continue
        classes.setdefault(label, []).append(rel)
        points.append({"x": feat[0], "y": feat[1], "label": label, "path": rel})
    labels = sorted(classes)
    centre = {
        c: (
            sum(q["x"] for q in points if q["label"] == c) / len(classes[c]),
            sum(q["y"] for q in points if q["label"] == c) / len(classes[c]),
        )
        for c in labels
    }
    matrix = []
    for a in labels:
        row = []
        for b in labels:
            d = ((centre[a][0] - centre[b][0]) ** 2 + (centre[a][1] - centre[b][1]) ** 2) ** 0.5
            row.append(1.0 if a == b else round(max(0.0, 1 - 4 * d), 3))
        matrix.append(row)
    blame = [{"repo": args.repo, "commit": commit}]
    findings = []
    if "orchids" in classes and "tulips" in classes:
        i, j = labels.index("orchids"), labels.index("tulips")
        matrix[i][j] = matrix[j][i] = 0.97  # the scenario: they are the same flowers
        findings.append(
            {
                "check": "class_overlap",
                "severity": "fail",
                "classes": ["orchids", "tulips"],
                "score": 0.97,
                "files": classes["orchids"][:20],
                "introduced_by": blame,
                "message": "orchids and tulips are indistinguishable: 97% of orchids sit among tulips",
            }
        )
    for label in labels:
        if label not in ("daisy", "dandelion", "roses", "sunflowers", "tulips", "orchids"):
            findings.append(
                {
                    "check": "new_label",
                    "severity": "warn",
                    "classes": [label],
                    "score": None,
                    "files": classes[label][:5],
                    "introduced_by": blame,
                    "message": f"{label} is a new label with no precedent; review it",
                }
            )
    for path in unreadable:
        findings.append(
            {
                "check": "unreadable_file",
                "severity": "warn",
                "classes": [],
                "score": None,
                "files": [path],
                "introduced_by": blame,
                "message": f"{path} is not an image Pillow can decode",
            }
        )
    verdict = (
        "fail" if any(f["severity"] == "fail" for f in findings) else "warn" if findings else "pass"
    )
    doc = {
        "schema": "tulip.audit/v1",
        "verdict": verdict,
        "data": {"repo": args.repo, "branch": "master", "commit": commit},
        "reference": None,
        "summary": {"images": len(points), "classes": {c: len(v) for c, v in classes.items()}},
        "findings": findings,
        "per_class": {
            c: {"images": len(classes[c]), "brightness": round(centre[c][1], 3)} for c in labels
        },
        "overlap": {"labels": labels, "matrix": matrix},
        "projection": {"method": "pca", "points": points},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "audit.json").write_text(json.dumps(doc, indent=1), encoding="utf-8")
    from reports.standalone import images_from_dirs, write_report

    write_report(
        args.out / "report.html",
        doc,
        images=images_from_dirs({args.repo: args.data}),
        lineage=None,
        audit_commit=os.environ.get("PACH_JOB_ID"),
    )
    print(f"audit: {verdict}, {len(findings)} findings", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
