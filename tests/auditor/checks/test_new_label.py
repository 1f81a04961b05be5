import pytest

from auditor.checks.new_label import new_label
from tests.auditor.synthetic import make

GALLERY = [("daisy", 0, 12), ("roses", 1, 12), ("tulips", 2, 12)]


@pytest.fixture(scope="module")
def gallery():
    return make(GALLERY, seed=99, prefix="ref")


def test_a_distinct_class_absent_from_the_reference_is_a_new_label(gallery):
    d = make([("daisy", 0, 30), ("roses", 1, 30), ("orchids", 4, 30)])
    found = new_label(d.vectors, d.labels, d.paths, gallery.vectors, gallery.labels)
    assert [(f.check, f.severity, f.classes) for f in found] == [("new_label", "warn", ["orchids"])]
    assert found[0].files == sorted(p for p in d.paths if p.startswith("/orchids/"))
    assert found[0].score > 0.5


def test_a_lookalike_is_not_a_new_label(gallery):
    d = make([("daisy", 0, 30), ("orchids", 2, 30)])
    assert new_label(d.vectors, d.labels, d.paths, gallery.vectors, gallery.labels) == []


def test_with_only_the_previous_label_set_every_unknown_label_is_new():
    d = make([("daisy", 0, 10), ("orchids", 4, 10)])
    found = new_label(d.vectors, d.labels, d.paths, known_labels={"daisy"})
    assert [(f.classes, f.score) for f in found] == [(["orchids"], 1.0)]


def test_without_any_precedent_nothing_is_new():
    d = make([("daisy", 0, 10), ("orchids", 4, 10)])
    assert new_label(d.vectors, d.labels, d.paths) == []


def test_too_few_images_to_compare_is_still_new(gallery):
    d = make([("daisy", 0, 30), ("orchids", 2, 3)])
    found = new_label(d.vectors, d.labels, d.paths, gallery.vectors, gallery.labels)
    assert [(f.classes, f.score) for f in found] == [(["orchids"], 1.0)]
    assert "too few" in found[0].message
