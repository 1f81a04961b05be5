"""A small store for the review basket's tests: real JPEGs in flower_photos and an audit
commit (a user repo ``audits``, so no pipeline runs) whose findings the page offers to decide.

* ``/roses/t3.jpg`` is a tulip: a ``label_issue`` [roses -> tulips] (relabel it);
* ``/orchids/`` holds tulips: a ``class_overlap`` [orchids, tulips] (rename the class).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from auditor.findings import finding_id


@dataclass(frozen=True)
class ReviewStore:
    root: Path
    data_commit: str
    audit_commit: str
    label_issue: str  # finding ids
    overlap: str


def build_review_store(root: Path, flowers: Path) -> ReviewStore:
    from pipelines.embedded.store import EmbeddedStore

    tulips = sorted((flowers / "tulips").glob("*.jpg"))
    roses = sorted((flowers / "roses").glob("*.jpg"))
    store = EmbeddedStore(root)
    try:
        store.create_repo("flower_photos")
        with store.start_commit("flower_photos", description="flowers, orchids among them") as w:
            for i, p in enumerate(tulips[:3]):
                w.put_file(f"/tulips/t{i}.jpg", p)
            for i, p in enumerate(roses[:2]):
                w.put_file(f"/roses/r{i}.jpg", p)
            w.put_file("/roses/t3.jpg", tulips[3])
            for i, p in enumerate(tulips[4:6]):
                w.put_file(f"/orchids/o{i}.jpg", p)
        data = store.resolve("flower_photos@master").id
        orchids = ["/orchids/o0.jpg", "/orchids/o1.jpg"]
        overlap = finding_id("class_overlap", ["orchids", "tulips"], orchids)
        label = finding_id("label_issue", ["roses", "tulips"], ["/roses/t3.jpg"])
        blame = [{"repo": "flower_photos", "commit": data}]
        doc = {
            "schema": "tulip.audit/v1",
            "verdict": "fail",
            "data": {"repo": "flower_photos", "branch": "master", "commit": data},
            "reference": None,
            "summary": {"images": 8, "classes": {"tulips": 3, "roses": 3, "orchids": 2}},
            "findings": [
                {
                    "id": overlap,
                    "check": "class_overlap",
                    "severity": "fail",
                    "classes": ["orchids", "tulips"],
                    "score": 0.97,
                    "files": orchids,
                    "introduced_by": blame,
                    "message": "orchids and tulips are indistinguishable; rename it to tulips",
                },
                {
                    "id": label,
                    "check": "label_issue",
                    "severity": "warn",
                    "classes": ["roses", "tulips"],
                    "score": 0.9,
                    "files": ["/roses/t3.jpg"],
                    "introduced_by": blame,
                    "message": "/roses/t3.jpg looks like tulips, not roses",
                },
            ],
        }
        store.create_repo("audits")
        with store.start_commit("audits", description="an audit of flower_photos") as w:
            w.put_bytes("/audit.json", json.dumps(doc).encode())
        audit = store.resolve("audits@master").id
        return ReviewStore(root, data, audit, label, overlap)
    finally:
        store.close()
