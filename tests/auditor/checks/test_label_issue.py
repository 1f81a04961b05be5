import numpy as np
import pytest

from auditor.checks.label_issue import label_issue, label_scores
from tests.auditor.synthetic import make


@pytest.fixture(scope="module")
def data():
    return make([("daisy", 0, 40), ("roses", 1, 40), ("tulips", 2, 40)], separation=8.0)


def test_flipped_labels_are_found_with_the_true_label_suggested(data):
    labels = list(data.labels)
    flips = {3: "roses", 50: "tulips", 100: "daisy"}  # truly daisy, roses, tulips
    truth = {i: labels[i] for i in flips}
    for i, new in flips.items():
        labels[i] = new
    found = label_issue(data.vectors, labels, data.paths)
    assert sorted((f.files[0], f.classes[0], f.classes[1]) for f in found) == sorted(
        (data.paths[i], flips[i], truth[i]) for i in flips
    )
    assert {(f.check, f.severity) for f in found} == {("label_issue", "warn")}
    assert all(len(f.files) == 1 for f in found)


def test_clean_labels_give_no_issues(data):
    assert label_issue(data.vectors, data.labels, data.paths) == []


def test_merged_classes_do_not_flood_the_queue():
    d = make([("daisy", 0, 40), ("tulips", 2, 40), ("orchids", 2, 40)])
    assert len(label_issue(d.vectors, d.labels, d.paths)) > 5
    assert label_issue(d.vectors, d.labels, d.paths, merge=[("orchids", "tulips")]) == []


def test_scores_are_out_of_sample_probabilities(data):
    s = label_scores(data.vectors, data.labels)
    assert s.regression.shape == (120, 3) and s.neighbours.shape == (120, 3)
    np.testing.assert_allclose(s.regression.sum(axis=1), 1.0, atol=1e-6)
    assert (s.combined.argmax(axis=1) == s.given).mean() > 0.95


def test_one_class_cannot_be_scored(data):
    assert label_scores(data.vectors[:40], data.labels[:40]) is None


def test_options_are_validated(data):
    with pytest.raises(ValueError, match="k must be >= 1"):
        label_issue(data.vectors, data.labels, data.paths, k=0)
