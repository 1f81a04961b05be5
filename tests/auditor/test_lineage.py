"""The lineage graph, built from a real embedded store whose real engine ran three tiny stages.

See ``lineage_history.py`` for the history: initial → roses → orchids (audit fails, Convert
blocked) → cleanup (orchids deleted, daisy 1 retaken), then a label_reference commit that
reruns Audit and Convert with flower_photos and Train under their older IDs.
"""

from __future__ import annotations

import json
import re
import shutil

import pytest

from auditor import lineage as L
from pipelines.embedded.store import EmbeddedStore
from pipelines.errors import TulipError

from .lineage_history import jpeg, shared_history


@pytest.fixture(scope="session")
def history(tmp_path_factory):
    return shared_history(tmp_path_factory)


@pytest.fixture(scope="module")
def graph(history):
    store = history.open()
    try:
        return L.build_graph(store)
    finally:
        store.close()


def fp(commit: str) -> str:
    return L.commit_node("flower_photos", commit)


def files_of(G, nodes) -> set[str]:
    return {G.nodes[n]["path"] for n in nodes if G.nodes[n]["type"] == L.FILE}


def test_three_stage_chain_nodes_and_edges(history, graph):
    G, o = graph, history.orchids
    spec = {p: next(n for n in G if n.startswith(f"commit:{p}.spec@")) for p in ("Train", "Audit")}
    train = L.commit_node("Train", o)
    # Every edge touching Train@orchids, exactly.
    touching = {(u, v, k) for u, v, k in G.in_edges(train, keys=True)}
    touching |= {(u, v, k) for u, v, k in G.out_edges(train, keys=True)}
    assert touching == {
        (L.repo_node("Train"), train, L.CONTAINS),
        (L.commit_node("Train", history.roses), train, L.PARENT),
        (train, L.commit_node("Train", history.cleanup), L.PARENT),
        (fp(o), train, L.PROVENANCE),
        (spec["Train"], train, L.PROVENANCE),
        (L.job_node("Train", o), train, L.PRODUCED),
        (train, L.model_node("Train", o), L.IS_MODEL),
        (train, L.commit_node("Convert", o), L.PROVENANCE),
        (train, L.job_node("Convert", o), L.INPUT_OF),
    }
    job = L.job_node("Audit", o)
    assert {(u, k) for u, _v, k in G.in_edges(job, keys=True)} == {
        (fp(o), L.INPUT_OF),
        (L.commit_node("label_reference", history.ref0), L.INPUT_OF),
        (L.pipeline_node("Audit", 1), L.SPEC_OF),
    }
    assert (spec["Audit"], L.pipeline_node("Audit", 1), L.VERSION_OF) in set(G.edges(keys=True))
    assert G.nodes[L.pipeline_node("Audit", 1)]["spec"]["pipeline"]["name"] == "Audit"
    # The data commit introduced exactly its three orchids.
    assert files_of(G, L._changes(G, fp(o), L.INTRODUCED)) == {
        "/orchids/1.jpg",
        "/orchids/2.jpg",
        "/orchids/3.jpg",
    }
    assert G.nodes[fp(o)]["kind"] == L.DATA and G.nodes[train]["kind"] == L.OUTPUT
    assert G.nodes[spec["Train"]]["kind"] == L.SPEC
    # The audit node carries the verdict; the blocked Convert commit is no model.
    assert G.nodes[L.audit_node("Audit", o)]["verdict"] == "fail"
    assert G.nodes[L.audit_node("Audit", o)]["by_check"] == {"class_overlap": 1}
    assert L.model_node("Convert", o) not in G
    assert "gate blocked" in G.nodes[L.commit_node("Convert", o)]["error"]
    assert G.nodes[L.job_node("Convert", o)]["state"] == "failure"
    assert G.nodes[L.job_node("Train", o)]["data_total"] == 1


def test_upstream_of_a_model_is_exactly_the_data_behind_it(history, graph):
    G = graph
    up = L.upstream(G, L.model_node("Convert", history.cleanup))
    data = {n for n in up if G.nodes[n]["type"] == L.COMMIT and G.nodes[n]["kind"] == L.DATA}
    # initial and roses still contribute files; orchids does not (deleted); nothing later.
    assert data == {
        fp(history.initial),
        fp(history.roses),
        fp(history.cleanup),
        L.commit_node("label_reference", history.ref0),
    }
    files = {
        (G.nodes[n]["repo"], G.nodes[n]["path"], n) for n in up if G.nodes[n]["type"] == L.FILE
    }
    assert {(r, p) for r, p, _ in files} == {
        ("flower_photos", p)
        for p in (
            "/daisy/1.jpg",
            "/daisy/2.jpg",
            "/daisy/3.jpg",
            "/tulips/1.jpg",
            "/tulips/2.jpg",
            "/tulips/3.jpg",
            "/roses/1.jpg",
            "/roses/2.jpg",
        )
    } | {("label_reference", "/tulips/r1.jpg")}
    # The retaken daisy 1 is there in its new version only.
    import hashlib

    new_daisy = L.file_node(
        "flower_photos", "/daisy/1.jpg", hashlib.sha256(jpeg("daisy", 100)).hexdigest()
    )
    old_daisy = L.file_node(
        "flower_photos", "/daisy/1.jpg", hashlib.sha256(jpeg("daisy", 1)).hexdigest()
    )
    assert new_daisy in up and old_daisy not in up
    # The model, its audit and the pipeline versions behind it are upstream too.
    assert L.model_node("Train", history.cleanup) in up
    assert L.audit_node("Audit", history.cleanup) in up
    assert L.pipeline_node("Convert", 1) in up and L.job_node("Convert", history.cleanup) in up


def test_upstream_of_the_orchids_model_holds_orchids_and_nothing_later(history, graph):
    G = graph
    up = L.upstream(G, L.model_node("Train", history.orchids), kinds=[L.FILE, L.COMMIT])
    assert {"/orchids/1.jpg", "/daisy/1.jpg", "/roses/2.jpg"} <= files_of(G, up)
    assert fp(history.cleanup) not in up and fp(history.orchids) in up
    assert all(G.nodes[n]["type"] in (L.FILE, L.COMMIT) for n in up)
    assert len(files_of(G, up)) == 11
    with pytest.raises(L.LineageError):
        L.upstream(G, "commit:nope@0")


def test_downstream_is_the_blast_radius(history, graph):
    G = graph
    # Orchids were deleted by cleanup: only the orchids commit set touched them.
    assert L.downstream(G, fp(history.orchids), kinds=[L.MODEL, L.AUDIT]) == {
        L.model_node("Train", history.orchids),
        L.audit_node("Audit", history.orchids),
    }
    # Roses are still there: every later model and audit was built on them.
    roses = L.downstream(G, fp(history.roses), kinds=[L.MODEL, L.AUDIT])
    later = (history.roses, history.orchids, history.cleanup)
    assert {L.model_node("Train", c) for c in later} <= roses
    assert {
        L.model_node("Convert", c) for c in (history.roses, history.cleanup, history.ref1)
    } <= roses
    assert L.audit_node("Audit", history.ref1) in roses
    assert L.model_node("Train", history.initial) not in roses
    assert L.model_node("Convert", history.orchids) not in G
    # The blocked Convert commit and its failed job are in the blast radius of orchids.
    down = L.downstream(G, fp(history.orchids))
    assert L.job_node("Convert", history.orchids) in down
    # A file version's blast radius: the commits holding it, and what was built from them.
    import hashlib

    orchid = L.file_node(
        "flower_photos", "/orchids/1.jpg", hashlib.sha256(jpeg("tulips", 11)).hexdigest()
    )
    assert L.holding_commits(G, orchid) == {fp(history.orchids)}
    assert L.model_node("Train", history.orchids) in L.downstream(G, orchid)


def test_an_unchanged_input_appears_under_its_older_id(history, graph):
    G = graph
    convert = L.commit_node("Convert", history.ref1)
    assert {(u, k) for u, _v, k in G.in_edges(convert, keys=True) if k == L.PROVENANCE} >= {
        (L.commit_node("Train", history.cleanup), L.PROVENANCE),
        (L.commit_node("Audit", history.ref1), L.PROVENANCE),
    }
    assert L.commit_node("Train", history.ref1) not in G  # Train did not run for ref1
    assert (fp(history.cleanup), L.commit_node("Audit", history.ref1), L.PROVENANCE) in set(
        G.edges(keys=True)
    )
    assert L.data_commits(G, L.model_node("Convert", history.ref1)) == sorted(
        [fp(history.cleanup), L.commit_node("label_reference", history.ref1)]
    )


def test_training_data_diff_names_the_class_and_commit(history, graph):
    G = graph
    diff = L.training_data_diff(
        G, L.model_node("Train", history.roses), L.model_node("Train", history.orchids)
    )
    assert diff.classes_added == ["flower_photos:orchids"] and diff.classes_removed == []
    assert diff.added == [f"flower_photos:/orchids/{i}.jpg" for i in (1, 2, 3)]
    assert diff.removed == [] and diff.modified == []
    assert [(c.id, c.description, len(c.added)) for c in diff.commits] == [
        (history.orchids, "add orchids", 3)
    ]
    back = L.training_data_diff(
        G, L.model_node("Train", history.orchids), L.model_node("Train", history.cleanup)
    )
    assert back.classes_removed == ["flower_photos:orchids"]
    assert back.modified == ["flower_photos:/daisy/1.jpg"]
    assert [(c.id, len(c.removed), c.modified) for c in back.commits] == [
        (history.cleanup, 3, ["flower_photos:/daisy/1.jpg"])
    ]
    # Over two commits: initial → orchids adds roses and orchids, each under its own commit.
    wide = L.training_data_diff(
        G, L.model_node("Train", history.initial), L.commit_node("Train", history.orchids)
    )
    assert [c.id for c in wide.commits] == [history.roses, history.orchids]
    assert wide.class_counts_b["flower_photos:orchids"] == 3
    json.dumps(wide.as_dict())


def test_node_link_json_round_trips_with_iso_times(graph):
    data = L.to_node_link(graph)
    text = json.dumps(data)
    assert data["directed"] and data["multigraph"] and data["graph"]["schema"] == L.SCHEMA
    commit = next(n for n in data["nodes"] if n["type"] == L.COMMIT and n.get("started"))
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", commit["started"])
    assert {"source", "target", "key", "kind"} <= set(data["links"][0])
    back = L.from_node_link(json.loads(text))
    assert set(back.nodes) == set(graph.nodes)
    assert set(back.edges(keys=True)) == set(graph.edges(keys=True))


def test_the_graph_is_deterministic(history, graph):
    store = history.open()
    try:
        again = L.build_graph(store)
    finally:
        store.close()
    assert L.canonical(again) == L.canonical(graph)


def test_files_are_optional(history, graph):
    store = history.open()
    try:
        bare = L.build_graph(store, include_files=False)
        some = L.build_graph(store, include_files=["label_reference"])
    finally:
        store.close()
    assert not any(a["type"] == L.FILE for _n, a in bare.nodes(data=True))
    assert set(bare.nodes) == {n for n in graph if graph.nodes[n]["type"] != L.FILE}
    assert {a["repo"] for _n, a in some.nodes(data=True) if a["type"] == L.FILE} == {
        "label_reference"
    }
    with pytest.raises(L.LineageError, match="no file versions of flower_photos"):
        L.live_files(bare, fp(history.orchids))


def test_subgraph_directions(history, graph):
    center = L.model_node("Train", history.roses)
    up = L.subgraph(graph, center, "upstream")
    both = L.subgraph(graph, center, "both")
    assert center in up and fp(history.roses) in up
    assert L.commit_node("Convert", history.roses) not in up
    assert L.commit_node("Convert", history.roses) in both
    assert not any(k == L.CONTAINS for _u, _v, k in both.edges(keys=True))
    assert both.graph["center"] == center
    with pytest.raises(ValueError):
        L.subgraph(graph, center, "sideways")


def test_dot_escapes_attacker_controlled_labels(store, run_jobs):
    nasty_path = '/x"y/<script>"x"</script>.jpg'  # paths cannot hold backslashes
    nasty_desc = '<script>"x"</script> \\N \\G\nline two'
    store.create_repo("data")
    with store.start_commit("data", description=nasty_desc) as w:
        w.put_bytes(nasty_path, b"payload")
    dot = L.to_dot(L.build_graph(store))
    quoted = re.compile(r'"(?:[^"\\]|\\.)*"')
    for line in dot.splitlines():
        bare = quoted.sub("", line)
        assert '"' not in bare and "<" not in bare and "\\" not in bare, line
    strings = [s[1:-1] for s in quoted.findall(dot)]
    unescaped = [re.sub(r"\\(.)", r"\1", s) for s in strings]
    assert nasty_path in unescaped  # the file's label, shown literally
    assert '<script>"x"</script> \\N \\G line two' in unescaped  # the commit's tooltip
    assert '<script>\\"x\\"</script> \\\\N' in dot
    assert L.dot_quote("a" * 200).endswith('…"') and len(L.dot_quote("a" * 200)) == 82


def test_record_export_adds_export_nodes(history, tmp_path, monkeypatch):
    monkeypatch.setenv("TULIP_NO_AUTORUN", "1")
    shutil.copytree(history.root, tmp_path / "store")
    store = EmbeddedStore(tmp_path / "store")
    try:
        export = {
            "id": "exp-1",
            "model": {"repo": "Convert", "commit": history.cleanup},
            "audit": {"repo": "Audit", "commit": history.cleanup, "verdict": "pass"},
            "forced": False,
            "reason": None,
            "targets": ["android", "ios"],
            "sha256": "ab" * 32,
            "time": "2026-01-01T00:00:00Z",
        }
        assert L.record_export(store, export) == "exp-1"
        generated = L.record_export(
            store, {"model": {"repo": "Train", "commit": history.roses}, "forced": True}
        )
        with pytest.raises(TulipError, match="not allowed"):
            L.record_export(store, {**export, "id": "../escape"})
        with pytest.raises(TulipError, match="names no model"):
            L.record_export(store, {"id": "x"})
        G = L.build_graph(store)
    finally:
        store.close()
    node = L.export_node("exp-1")
    assert G.nodes[node]["targets"] == ["android", "ios"]
    assert G.nodes[node]["record"]["repo"] == L.EXPORTS_REPO
    assert (L.model_node("Convert", history.cleanup), node, L.EXPORTED) in set(G.edges(keys=True))
    assert (L.audit_node("Audit", history.cleanup), node, L.GATED) in set(G.edges(keys=True))
    assert G.nodes[L.export_node(generated)]["forced"] is True
    assert L.repo_node(L.EXPORTS_REPO) not in G
    # The export is in the blast radius of the data behind it, and its data is upstream of it.
    assert node in L.downstream(G, fp(history.roses))
    assert fp(history.cleanup) in L.upstream(G, node)


def test_node_for_ref(history):
    store = history.open()
    try:
        assert L.node_for_ref(store, "Convert@master") == L.commit_node("Convert", history.ref1)
        assert L.node_for_ref(store, "flower_photos@master^") == fp(history.orchids)
        f = L.node_for_ref(store, "flower_photos@master:/roses/1.jpg")
        assert f.startswith("file:flower_photos:/roses/1.jpg@")
        with pytest.raises(L.LineageError, match="directory"):
            L.node_for_ref(store, "flower_photos@master:/roses")
    finally:
        store.close()


def test_the_same_history_gives_the_same_graph_under_other_ids(
    history, graph, tmp_path, monkeypatch
):
    """The property issue 8 asks of two backends: the graph depends on the history only."""
    from .lineage_history import build_history

    monkeypatch.setenv("TULIP_NO_AUTORUN", "1")
    again = build_history(tmp_path / "store", history.root.parent / "scripts")
    assert again.orchids != history.orchids
    store = again.open()
    try:
        other = L.build_graph(store)
    finally:
        store.close()
    assert L.canonical(other, ignore=L.TIMES) != L.canonical(graph, ignore=L.TIMES)
    assert L.canonical(other, ignore=L.TIMES, relabel=True) == L.canonical(
        graph, ignore=L.TIMES, relabel=True
    )


def test_file_history_methods_agree_across_branches(store):
    store.create_repo("photos")
    with store.start_commit("photos", description="c1") as w:
        w.put_bytes("/a/1.jpg", b"a1")
        w.put_bytes("/b/1.jpg", b"b1")
    c1 = w.id
    with store.start_commit("photos", description="c2") as w:
        w.put_bytes("/c/1.jpg", b"c1")
        w.put_bytes("/a/1.jpg", b"a1 retaken")
    c2 = w.id
    store.create_branch("photos", "dev", head=c1)
    with store.start_commit("photos", "dev", description="d1") as w:
        w.delete("/a")
        w.put_bytes("/d/1.jpg", b"d1")
    d1 = w.id
    with store.start_commit("photos", "dev", description="d2: nothing changes"):
        pass
    graphs = {}
    for method in ("history", "walk"):
        G = L.build_graph(store, include_files=False)
        L.add_file_versions(G, store, ["photos"], method=method)
        graphs[method] = G
    assert L.canonical(graphs["history"]) == L.canonical(graphs["walk"])
    G = graphs["history"]
    node = lambda c: L.commit_node("photos", c)  # noqa: E731
    assert set(L.live_files(G, node(d1))) == {"/b/1.jpg", "/d/1.jpg"}
    assert set(L.live_files(G, node(c2))) == {"/a/1.jpg", "/b/1.jpg", "/c/1.jpg"}
    assert (G.nodes[node(c2)]["files_added"], G.nodes[node(c2)]["files_modified"]) == (1, 1)
    assert (G.nodes[node(d1)]["files_deleted"], G.nodes[node(d1)]["files"]) == (1, 2)
    # b/1 from c1 lives on both branches; a/1 from c1 was replaced on master, deleted on dev.
    assert {node(c1), node(c2), node(d1)} <= L.influenced_commits(G, node(c1))
    a1 = next(n for n in L._changes(G, node(c1), L.INTRODUCED) if "/a/" in n)
    assert L.holding_commits(G, a1) == {node(c1)}
    with pytest.raises(ValueError):
        L.add_file_versions(
            L.build_graph(store, include_files=False), store, ["photos"], method="x"
        )
