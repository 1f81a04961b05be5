"""Each label_issue finding explains itself: voting neighbours, reference neighbours,
probabilities and signals, compactly (top-k only)."""

from __future__ import annotations

from auditor.audit import run_audit
from auditor.explain import TOP
from tests.auditor.synthetic import make


def test_label_issues_carry_their_neighbours_probabilities_and_signals():
    data = make([("a", 0, 30), ("b", 1, 30), ("c", 2, 30), ("a", 1, 2)], seed=3)
    gallery = make([("a", 0, 8), ("b", 1, 8), ("c", 2, 8)], seed=4, prefix="ref")
    doc = run_audit(data, reference=gallery, data_ref={"repo": "r"}).document
    issues = [f for f in doc["findings"] if f["check"] == "label_issue"]
    odd = [f for f in issues if f["files"][0].startswith("/a/1_")]
    assert len(odd) == 2
    for f in odd:
        ex = f["details"]["explanation"]
        assert max(ex["probabilities"], key=ex["probabilities"].get) == "b"
        assert ex["signals"] and set(ex["signals"]) <= {"ranked", "confident"}
        assert 0 < len(ex["neighbours"]) <= TOP and len(ex["reference"]) == TOP
        assert all(label == "b" for _, label, _ in ex["neighbours"])
        assert {label for _, label, _ in ex["reference"]} == {"b"}
        assert all(p.startswith("/b/ref") for p, _, _ in ex["reference"])
        assert f["files"][0] not in [p for p, _, _ in ex["neighbours"]]
