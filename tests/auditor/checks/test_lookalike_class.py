import pytest

from auditor.checks.lookalike_class import gallery_match, lookalike_class
from tests.auditor.synthetic import make

# the reference gallery: other pictures of daisy (kind 0), roses (1) and tulips (2)
GALLERY = [("daisy", 0, 12), ("roses", 1, 12), ("tulips", 2, 12)]


@pytest.fixture(scope="module")
def gallery():
    return make(GALLERY, seed=99, prefix="ref")


def test_a_new_name_for_a_reference_class_is_a_lookalike(gallery):
    d = make([("daisy", 0, 30), ("roses", 1, 30), ("orchids", 2, 30)])
    found = lookalike_class(d.vectors, d.labels, d.paths, gallery.vectors, gallery.labels)
    assert [(f.check, f.severity, f.classes) for f in found] == [
        ("lookalike_class", "fail", ["orchids", "tulips"])
    ]
    assert found[0].files == sorted(p for p in d.paths if p.startswith("/orchids/"))
    assert found[0].details["votes"] >= 0.8
    assert "rename it to tulips" in found[0].message


def test_a_class_filed_under_another_reference_name_is_a_lookalike(gallery):
    # the data's "roses" are really tulips
    d = make([("daisy", 0, 30), ("roses", 2, 30)])
    found = lookalike_class(d.vectors, d.labels, d.paths, gallery.vectors, gallery.labels)
    assert [(f.classes, f.severity) for f in found] == [(["roses", "tulips"], "fail")]
    assert found[0].details["own_overlap"] < 0.5


def test_a_genuinely_new_class_is_not_a_lookalike(gallery):
    d = make([("daisy", 0, 30), ("roses", 1, 30), ("orchids", 4, 30)])
    assert lookalike_class(d.vectors, d.labels, d.paths, gallery.vectors, gallery.labels) == []


def test_the_data_matching_the_reference_gives_nothing(gallery):
    d = make(GALLERY, seed=3)
    assert lookalike_class(d.vectors, d.labels, d.paths, gallery.vectors, gallery.labels) == []


def test_gallery_match_tests_the_nearest_candidates_and_the_own_name(gallery):
    d = make([("roses", 1, 30), ("orchids", 2, 30)])
    m = gallery_match(d.vectors, d.labels, gallery.vectors, gallery.labels, candidates=1)
    assert m.best("orchids") == ("tulips", pytest.approx(m.get("orchids", "tulips")))
    assert m.get("orchids", "tulips") >= 0.5
    assert m.get("roses", "roses") >= 0.5  # own name always tested


def test_gallery_width_must_match(gallery):
    d = make([("a", 0, 10)])
    with pytest.raises(ValueError, match="widths differ"):
        gallery_match(d.vectors, d.labels, gallery.vectors[:, :5], gallery.labels)
