import numpy as np
import pytest

from auditor.checks.duplicate import duplicate
from tests.auditor.synthetic import make


@pytest.fixture
def data():
    return make([("a", 0, 10), ("b", 1, 10)])


def test_exact_and_near_copies_within_a_class_are_found(data):
    x, labels, paths, sha = (
        data.vectors.copy(),
        list(data.labels),
        list(data.paths),
        list(data.sha256),
    )
    x[1] = x[0]
    sha[1] = sha[0]  # byte-identical copy: /a/0_0.jpg and /a/0_1.jpg
    x[12] = x[11] + 0.01  # near copy inside b (a re-saved file): /b/1_1.jpg and /b/1_2.jpg
    found = duplicate(x, labels, paths, sha256=sha)
    assert [(f.check, f.severity, f.classes, f.files, f.details["kind"]) for f in found] == [
        ("duplicate", "info", ["a"], ["/a/0_0.jpg", "/a/0_1.jpg"], "exact"),
        ("duplicate", "info", ["b"], ["/b/1_1.jpg", "/b/1_2.jpg"], "near"),
    ]
    assert found[0].score == 1.0
    assert 0.99 < found[1].score < 1.0


def test_distinct_pictures_are_not_duplicates(data):
    assert duplicate(data.vectors, data.labels, data.paths, sha256=data.sha256) == []


def test_a_copy_under_another_label_is_not_a_within_class_duplicate(data):
    x = data.vectors.copy()
    x[15] = x[0]
    assert duplicate(x, data.labels, data.paths) == []


def test_inputs_are_validated_with_shapes(data):
    with pytest.raises(ValueError, match=r"2-D \(n, d\), got shape \(20,\)"):
        duplicate(data.vectors[:, 0], data.labels, data.paths)
    with pytest.raises(ValueError, match="labels has 19 entries but vectors has 20 rows"):
        duplicate(data.vectors, data.labels[:19], data.paths)
    with pytest.raises(TypeError, match="numpy array"):
        duplicate(data.vectors.tolist(), data.labels, data.paths)
    with pytest.raises(ValueError, match="NaN"):
        duplicate(np.full((20, 3), np.nan), data.labels, data.paths)
