import pytest

from auditor.checks.class_imbalance import class_imbalance


def _data(counts):
    labels = [c for c, n in counts.items() for _ in range(n)]
    return labels, [f"/{c}/{i}.jpg" for i, c in enumerate(labels)]


def test_skewed_and_tiny_classes_warn():
    labels, paths = _data({"daisy": 120, "roses": 30, "orchids": 8})
    found = class_imbalance(labels, paths)
    assert [(f.check, f.severity, f.classes) for f in found] == [
        ("class_imbalance", "warn", ["daisy", "orchids"]),
        ("class_imbalance", "warn", ["orchids"]),
    ]
    assert found[0].details["ratio"] == 15.0 and found[0].files == []
    assert found[1].files == sorted(p for p in paths if p.startswith("/orchids/"))


def test_balanced_classes_are_fine():
    labels, paths = _data({"daisy": 30, "roses": 25})
    assert class_imbalance(labels, paths) == []


def test_max_ratio_is_validated():
    with pytest.raises(ValueError, match=r"max_ratio must be >= 1, got 0\.5"):
        class_imbalance(["a"], ["/a/1"], max_ratio=0.5)
