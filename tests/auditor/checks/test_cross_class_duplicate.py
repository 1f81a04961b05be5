import pytest

from auditor.checks.cross_class_duplicate import cross_class_duplicate
from tests.auditor.synthetic import make


@pytest.fixture
def data():
    return make([("a", 0, 10), ("b", 1, 10)])


def test_one_picture_under_two_labels_is_a_warning(data):
    x, sha = data.vectors.copy(), list(data.sha256)
    x[10], sha[10] = x[0], sha[0]  # /b/1_0.jpg is /a/0_0.jpg
    found = cross_class_duplicate(x, data.labels, data.paths, sha256=sha)
    assert [(f.check, f.severity, f.classes, f.files) for f in found] == [
        ("cross_class_duplicate", "warn", ["a", "b"], ["/a/0_0.jpg", "/b/1_0.jpg"])
    ]
    assert found[0].details["labels"] == {"/a/0_0.jpg": "a", "/b/1_0.jpg": "b"}


def test_a_class_made_of_copies_of_another_fails(data):
    x, sha = data.vectors.copy(), list(data.sha256)
    for i in range(6):  # 6 of b's 10 pictures are a's
        x[10 + i], sha[10 + i] = x[i], sha[i]
    found = cross_class_duplicate(x, data.labels, data.paths, sha256=sha)
    assert len(found) == 6
    assert {f.severity for f in found} == {"fail"}
    assert found[0].details["class_fraction"] == {"a/b": 0.6}


def test_near_copy_across_labels_is_found_without_hashes(data):
    x = data.vectors.copy()
    x[10] = x[0] + 0.01
    found = cross_class_duplicate(x, data.labels, data.paths)
    assert [(f.classes, f.details["kind"]) for f in found] == [(["a", "b"], "near")]


def test_no_shared_pictures_no_findings(data):
    assert cross_class_duplicate(data.vectors, data.labels, data.paths, sha256=data.sha256) == []


def test_fail_fraction_is_validated(data):
    with pytest.raises(ValueError, match=r"fail_fraction must be in \[0.0, 1.0\], got 2"):
        cross_class_duplicate(data.vectors, data.labels, data.paths, fail_fraction=2)
