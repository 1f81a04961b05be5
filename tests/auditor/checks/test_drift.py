import numpy as np
import pytest

from auditor.checks.drift import drift, shift_effect
from pipelines.records import EmbeddingSet
from tests.auditor.synthetic import make


def _join(*sets):
    return EmbeddingSet(
        paths=[p for s in sets for p in s.paths],
        labels=[label for s in sets for label in s.labels],
        sha256=[h for s in sets for h in s.sha256],
        vectors=np.vstack([s.vectors for s in sets]),
        architecture="synthetic",
    )


@pytest.fixture(scope="module")
def previous():
    return make([("tulips", 2, 40), ("roses", 1, 40)])


def test_more_pictures_of_the_same_kind_are_not_drift(previous):
    more = make([("tulips", 2, 20)], seed=5, prefix="new")
    now = _join(previous, more)
    assert (
        drift(
            now.vectors,
            now.labels,
            now.paths,
            previous.vectors,
            previous.labels,
            sha256=now.sha256,
            previous_sha256=previous.sha256,
        )
        == []
    )


def test_replaced_content_is_drift_and_names_the_added_files(previous):
    other = make([("tulips", 4, 20)], seed=5, prefix="new")
    now = _join(previous, other)
    found = drift(
        now.vectors,
        now.labels,
        now.paths,
        previous.vectors,
        previous.labels,
        sha256=now.sha256,
        previous_sha256=previous.sha256,
    )
    assert [(f.check, f.severity, f.classes) for f in found] == [("drift", "warn", ["tulips"])]
    assert found[0].files == sorted(other.paths)
    assert found[0].details["p_value"] <= 0.01
    assert found[0].details["added"] == 20


def test_too_few_added_pictures_are_not_tested(previous):
    other = make([("tulips", 4, 3)], seed=5, prefix="new")
    now = _join(previous, other)
    assert (
        drift(
            now.vectors,
            now.labels,
            now.paths,
            previous.vectors,
            previous.labels,
            previous_paths=previous.paths,
        )
        == []
    )


def test_effect_is_about_zero_for_one_distribution():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 16)), rng.normal(size=(200, 16))
    assert abs(shift_effect(a, b)) < 0.03
    assert shift_effect(a, b + 1.0) > 0.5


def test_it_needs_a_way_to_tell_added_images(previous):
    with pytest.raises(ValueError, match="previous_paths"):
        drift(previous.vectors, previous.labels, previous.paths, previous.vectors, previous.labels)
