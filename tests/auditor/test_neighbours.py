import numpy as np

from auditor.neighbours import components, duplicate_groups, nearest, similar_pairs


def test_similar_pairs_finds_the_copy_only():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 16)) + 5
    x[7] = x[3] * 1.01
    pairs = similar_pairs(x, threshold=0.8)
    assert [(int(i), int(j)) for i, j, _ in pairs] == [(3, 7)]


def test_nearest_skips_self_and_same_group():
    x = np.array([[1.0, 0], [1.0, 0.01], [0.9, 0.1], [0, 1.0], [0.1, 0.9]])
    idx, _ = nearest(x, 1, center=np.zeros(2))
    assert idx[:, 0].tolist() == [1, 0, 1, 4, 3]
    idx, _ = nearest(x, 1, groups=np.array([0, 0, 1, 2, 3]), center=np.zeros(2))
    assert idx[0, 0] == 2


def test_groups_join_hashes_and_pairs():
    g = duplicate_groups(5, sha256=["a", "b", "a", "c", "d"], pairs=np.array([[3, 4, 0.9]]))
    assert g[0] == g[2] and g[3] == g[4] and len(set(g)) == 3
    assert components(3, np.zeros((0, 2))).tolist() == [0, 1, 2]
