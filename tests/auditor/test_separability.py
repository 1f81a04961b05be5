import numpy as np
import pytest

from auditor.separability import fold_ids, overlap, overlap_from_auc, separability_auc


def test_one_distribution_overlaps_and_two_do_not():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(40, 10)), rng.normal(size=(40, 10))
    assert overlap(a, b)[0] >= 0.6
    assert overlap(a, b + 1.5)[0] <= 0.1


def test_auc_is_insensitive_to_the_set_sizes():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(200, 10)), rng.normal(size=(12, 10)) + 1.5
    assert separability_auc(a, b) > 0.9


def test_overlap_maps_auc_to_zero_one():
    assert overlap_from_auc(0.5) == 1.0
    assert overlap_from_auc(0.3) == 1.0
    assert overlap_from_auc(1.0) == 0.0
    assert overlap_from_auc(0.75) == pytest.approx(0.5)


def test_folds_keep_groups_together_and_stratify():
    y = np.array([0] * 20 + [1] * 20)
    groups = np.repeat(np.arange(20), 2)
    ids = fold_ids(y, groups, 5, seed=0)
    assert all(len(set(ids[groups == g])) == 1 for g in range(20))
    for f in range(5):
        assert (y[ids == f] == 0).sum() == 4 and (y[ids == f] == 1).sum() == 4


def test_inputs_are_validated():
    with pytest.raises(ValueError, match="same width"):
        separability_auc(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="at least 2 rows on each side, got 1 and 5"):
        separability_auc(np.zeros((1, 3)), np.zeros((5, 3)))
