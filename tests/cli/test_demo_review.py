"""Round 3 of `tulip demo` without the pipelines: the decisions it writes on round 2's audit
(rename the lookalike class, decide each single image it raised against the story's truth)
and the one fix commit `apply_review` makes of them. The whole story runs in test_demo.py
(slow)."""

from __future__ import annotations

import json

import pytest

from auditor.findings import finding_id
from pipelines.embedded.store import EmbeddedStore
from tulip.demo import Demo, DemoOptions, RoundResult


def _finding(check, classes, files, severity="warn"):
    return {"id": finding_id(check, classes, files), "check": check, "severity": severity,
            "classes": classes, "files": files, "message": check, "introduced_by": []}  # fmt: skip


def _audit(store, data_commit, findings):
    doc = {
        "schema": "tulip.audit/v1",
        "verdict": "fail" if any(f["severity"] == "fail" for f in findings) else "warn",
        "data": {"repo": "flower_photos", "branch": "master", "commit": data_commit},
        "findings": findings,
    }
    with store.start_commit("Audit") as w:
        w.put_bytes("/audit.json", json.dumps(doc).encode())
    return store.resolve("Audit@master").id


@pytest.fixture
def rounds(tmp_path, monkeypatch):
    monkeypatch.setenv("TULIP_NO_AUTORUN", "1")
    store = EmbeddedStore(tmp_path / "demo" / "store")
    store.create_repo("flower_photos")
    store.create_repo("Audit")
    with store.start_commit("flower_photos") as w:
        for name in ("daisy/1", "daisy/2", "roses/3", "roses/4"):
            w.put_bytes(f"/{name}.jpg", name.encode())
    round1 = store.resolve("flower_photos@master").id
    seen = _finding("label_issue", ["daisy", "roses"], ["/daisy/2.jpg"])
    a1 = _audit(store, round1, [seen])
    with store.start_commit("flower_photos", description="add orchids") as w:
        for i in (5, 6):
            w.put_bytes(f"/orchids/{i}.jpg", f"tulip {i}".encode())
    round2 = store.resolve("flower_photos@master").id
    lookalike = _finding("lookalike_class", ["orchids", "tulips"], ["/orchids/5.jpg"], "fail")
    new = _finding("label_issue", ["roses", "daisy"], ["/roses/4.jpg"])  # round 2's own
    orchid = _finding("label_issue", ["orchids", "roses"], ["/orchids/6.jpg"])  # a tulip
    a2 = _audit(store, round2, [lookalike, seen, new, orchid])
    demo = Demo(DemoOptions(workdir=tmp_path / "demo"), say=lambda _m: None)
    demo.backend = store
    r1 = RoundResult("round 1", round1, "warn", [], "open", None, audit_commit=a1)
    r2 = RoundResult("round 2", round2, "fail", [], "blocked", None, audit_commit=a2)
    ids = {
        "seen": seen["id"],
        "new": new["id"],
        "lookalike": lookalike["id"],
        "orchid": orchid["id"],
    }
    yield demo, r1, r2, ids
    store.close()


def test_round_3_renames_the_lookalike_and_accepts_the_images_whose_labels_are_right(rounds):
    demo, _r1, r2, ids = rounds
    fix = demo._review(r2)
    decisions = json.loads((demo.workdir / "review-decisions.json").read_text())
    assert decisions == [
        {"finding": ids["lookalike"], "action": "rename", "to": "tulips"},
        {"finding": ids["seen"], "file": "/daisy/2.jpg", "action": "accept"},
        {"finding": ids["new"], "file": "/roses/4.jpg", "action": "accept"},
        # an orchid is a tulip: right once the rename lands, so it is accepted, as a tulip
        {"finding": ids["orchid"], "file": "/orchids/6.jpg", "action": "accept"},
    ]
    store = demo.backend
    head = store.resolve("flower_photos@master")
    assert head.id == fix and head.parent == r2.data_commit and head.origin == "USER"
    files = {f.path for f in store.walk_files("flower_photos", fix)}
    assert files == {
        "/daisy/1.jpg", "/daisy/2.jpg", "/roses/3.jpg", "/roses/4.jpg",
        "/tulips/5.jpg", "/tulips/6.jpg",
    }  # fmt: skip
    assert head.metadata["tulip.review.audit"] == f"Audit@{r2.audit_commit}"
    assert head.metadata["tulip.review.by"] == "tulip-demo"
    from auditor.review.ledger import load_ledger

    accepted = {
        e.path.rsplit("/", 1)[-1]: e.label for es in load_ledger(store).values() for e in es
    }
    assert accepted == {"2.jpg": "daisy", "4.jpg": "roses", "6.jpg": "tulips"}
