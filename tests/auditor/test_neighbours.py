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


def _clustered(n: int = 600, d: int = 48, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(6, d)) * 3
    return (centres[rng.integers(0, 6, n)] + rng.normal(size=(n, d)) + 8).astype(np.float32)


def test_hnsw_graph_agrees_with_exact_search():
    from auditor.neighbours import neighbour_graph

    x = _clustered()
    exact = neighbour_graph(x, 10, method="exact")
    ann = neighbour_graph(x, 10, method="hnsw")
    assert (exact.method, ann.method) == ("exact", "hnsw")
    overlap = np.mean(
        [len(set(a) & set(b)) / 10 for a, b in zip(exact.indices, ann.indices, strict=True)]
    )
    assert overlap >= 0.97
    assert not (ann.indices == np.arange(len(x))[:, None]).any()  # never its own neighbour
    assert np.allclose(exact.similarities[:, 0], ann.similarities[:, 0], atol=2e-3)


def test_auto_switches_to_hnsw_at_the_crossover():
    from auditor.neighbours import neighbour_graph

    x = _clustered(300)
    assert neighbour_graph(x, 5, exact_below=301).method == "exact"
    assert neighbour_graph(x, 5, exact_below=300).method == "hnsw"


def test_graph_pairs_match_the_exact_pair_scan():
    from auditor.neighbours import neighbour_graph

    rng = np.random.default_rng(3)
    x = (rng.normal(size=(400, 48)) + 5).astype(np.float32)
    for src, dst in [(1, 50), (2, 60), (3, 70), (70, 71)]:
        x[dst] = x[src] + 0.01 * rng.normal(size=x.shape[1])
    exact = similar_pairs(x, threshold=0.8)
    for method in ("exact", "hnsw"):
        got = neighbour_graph(x, 12, method=method).pairs(0.8)
        assert [tuple(map(int, p[:2])) for p in got] == [tuple(map(int, p[:2])) for p in exact]
        assert np.allclose(got[:, 2], exact[:, 2], atol=2e-3)


def test_nearest_from_a_graph_skips_groups_and_refills_short_rows():
    from auditor.neighbours import neighbour_graph

    x = _clustered(200)
    x[10:30] = x[10]  # one picture twenty times: more copies than the graph keeps
    groups = np.arange(200)
    groups[10:30] = 10
    graph = neighbour_graph(x, 8, method="exact")
    got_idx, got_sim = nearest(x, 5, groups=groups, graph=graph)
    want_idx, want_sim = nearest(x, 5, groups=groups)
    assert (got_idx == want_idx).all()
    assert np.allclose(got_sim, want_sim)
    assert not np.isin(got_idx[10], np.arange(10, 30)).any()


def test_exact_neighbours_in_column_blocks_match_one_block(monkeypatch):
    import auditor.neighbours as nb

    x = _clustered(300)
    whole = nb.exact_neighbours(x, 7)
    monkeypatch.setattr(nb, "_ANN_CHUNK", 64)  # forces reading the columns in blocks
    blocks = nb.exact_neighbours(x, 7)
    assert (whole[0] == blocks[0]).all() and np.allclose(whole[1], blocks[1])


def test_component_ids_are_the_smallest_row():
    assert components(6, np.array([[4, 2], [2, 5]])).tolist() == [0, 1, 2, 3, 2, 2]


def test_exact_graph_keeps_every_pair_above_the_threshold():
    from auditor.neighbours import neighbour_graph

    x = _clustered(300)  # tight clusters: far more pairs above 0.5 than k per row
    graph = neighbour_graph(x, 3, method="exact", pairs_at=0.5)
    want = similar_pairs(x, threshold=0.6)
    got = graph.pairs(0.6)
    assert len(got) > 3 * len(x)
    assert (got[:, :2] == want[:, :2]).all() and np.allclose(got[:, 2], want[:, 2])
