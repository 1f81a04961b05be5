import pytest

from auditor.checks.split_leakage import split_leakage
from tests.auditor.synthetic import make


@pytest.fixture
def data():
    return make([("a", 0, 10), ("b", 1, 10)])


def test_a_copy_in_train_and_test_leaks(data):
    x, sha = data.vectors.copy(), list(data.sha256)
    x[1], sha[1] = x[0], sha[0]
    splits = {p: "train" for p in data.paths} | {"/a/0_1.jpg": "test"}
    found = split_leakage(x, data.labels, data.paths, splits, sha256=sha)
    assert [(f.check, f.severity, f.classes, f.files) for f in found] == [
        ("split_leakage", "warn", ["a"], ["/a/0_0.jpg", "/a/0_1.jpg"])
    ]
    assert found[0].details["splits"] == {"/a/0_0.jpg": "train", "/a/0_1.jpg": "test"}


def test_copies_in_one_split_do_not_leak(data):
    x, sha = data.vectors.copy(), list(data.sha256)
    x[1], sha[1] = x[0], sha[0]
    splits = {p: "train" for p in data.paths}
    assert split_leakage(x, data.labels, data.paths, splits, sha256=sha) == []


def test_splits_must_be_a_mapping(data):
    with pytest.raises(TypeError, match="splits must map path"):
        split_leakage(data.vectors, data.labels, data.paths, ["train"])
