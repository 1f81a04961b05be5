import numpy as np
import pytest

from auditor.checks.class_overlap import class_overlap, overlap_matrix, unique_rows
from tests.auditor.synthetic import make

# tulips and orchids share kind 2: the seed scenario, half of the tulips filed as orchids
SEED = [("daisy", 0, 30), ("roses", 1, 30), ("tulips", 2, 30), ("orchids", 2, 30)]


def test_one_class_under_two_names_fails_and_blames_the_new_label():
    d = make(SEED)
    found = class_overlap(
        d.vectors, d.labels, d.paths, sha256=d.sha256, known_labels={"daisy", "roses", "tulips"}
    )
    assert [(f.check, f.severity, f.classes) for f in found] == [
        ("class_overlap", "fail", ["orchids", "tulips"])
    ]
    f = found[0]
    assert f.files == sorted(p for p in d.paths if p.startswith("/orchids/"))
    assert f.score >= 0.7
    assert f.details["suspect"] == ["orchids"]
    assert "indistinguishable" in f.message


def test_without_history_both_labels_of_an_equal_pair_are_blamed():
    d = make(SEED)
    (f,) = class_overlap(d.vectors, d.labels, d.paths)
    assert f.details["suspect"] == ["orchids", "tulips"]
    assert len(f.files) == 60


def test_distinct_classes_even_close_ones_do_not_overlap():
    # separation 2.5 puts the classes close: a nearest-centroid rule errs on ~3% of rows
    d = make([("daisy", 0, 30), ("roses", 1, 30), ("tulips", 2, 30)], separation=2.5)
    assert class_overlap(d.vectors, d.labels, d.paths) == []
    m = overlap_matrix(d.vectors, d.labels)
    assert np.nanmax(m.overlap[~np.eye(3, dtype=bool)]) < 0.3


def test_exact_copies_are_set_aside_before_the_test():
    d = make([("a", 0, 20), ("b", 1, 20)])
    labels = list(d.labels)
    sha = list(d.sha256)
    # b's first 5 rows are byte copies of a's: one picture under two labels
    for i in range(5):
        sha[20 + i] = sha[i]
    keep = unique_rows(sha, labels)
    assert keep.sum() == 30 and not keep[:5].any() and not keep[20:25].any()


def test_small_classes_are_not_tested():
    d = make([("a", 0, 20), ("b", 0, 4)])
    assert class_overlap(d.vectors, d.labels, d.paths, min_images=5) == []
    assert [f.classes for f in class_overlap(d.vectors, d.labels, d.paths, min_images=4)] == [
        ["a", "b"]
    ]


def test_threshold_and_severity_are_options():
    d = make(SEED)
    assert class_overlap(d.vectors, d.labels, d.paths, threshold=0.0, min_images=30) != []
    (f,) = class_overlap(d.vectors, d.labels, d.paths, severity="warn")
    assert f.severity == "warn"
    with pytest.raises(ValueError, match="threshold"):
        class_overlap(d.vectors, d.labels, d.paths, threshold=1.5)
