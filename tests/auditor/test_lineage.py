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

from auditor.lineage.build import add_file_versions, build_graph
from auditor.lineage.diff import training_data_diff
from auditor.lineage.exports import record_export
from auditor.lineage.graph import (
    AUDIT,
    COMMIT,
    CONTAINS,
    DATA,
    EXPORTED,
    FILE,
    GATED,
    INPUT_OF,
    INTRODUCED,
    IS_MODEL,
    MODEL,
    OUTPUT,
    PARENT,
    PRODUCED,
    PROVENANCE,
    SCHEMA,
    SPEC,
    SPEC_OF,
    VERSION_OF,
    LineageError,
    audit_node,
    changes,
    commit_node,
    export_node,
    file_node,
    job_node,
    model_node,
    pipeline_node,
    repo_node,
)
from auditor.lineage.queries import (
    data_commits,
    downstream,
    holding_commits,
    influenced_commits,
    live_files,
    node_for_ref,
    subgraph,
    upstream,
)
from auditor.lineage.render import TIMES, canonical, dot_quote, from_node_link, to_dot, to_node_link
from pipelines.embedded.store import EmbeddedStore
from pipelines.errors import TulipError
from pipelines.layout import EXPORTS_REPO

from .lineage_history import jpeg, shared_history


@pytest.fixture(scope="session")
def history(tmp_path_factory):
    return shared_history(tmp_path_factory)


@pytest.fixture(scope="module")
def graph(history):
    store = history.open()
    try:
        return build_graph(store)
    finally:
        store.close()


def fp(commit: str) -> str:
    return commit_node("flower_photos", commit)


def files_of(G, nodes) -> set[str]:
    return {G.nodes[n]["path"] for n in nodes if G.nodes[n]["type"] == FILE}


def test_three_stage_chain_nodes_and_edges(history, graph):
    G, o = graph, history.orchids
    spec = {p: next(n for n in G if n.startswith(f"commit:{p}.spec@")) for p in ("Train", "Audit")}
    train = commit_node("Train", o)
    # Every edge touching Train@orchids, exactly.
    touching = {(u, v, k) for u, v, k in G.in_edges(train, keys=True)}
    touching |= {(u, v, k) for u, v, k in G.out_edges(train, keys=True)}
    assert touching == {
        (repo_node("Train"), train, CONTAINS),
        (commit_node("Train", history.roses), train, PARENT),
        (train, commit_node("Train", history.cleanup), PARENT),
        (fp(o), train, PROVENANCE),
        (spec["Train"], train, PROVENANCE),
        (job_node("Train", o), train, PRODUCED),
        (train, model_node("Train", o), IS_MODEL),
        (train, commit_node("Convert", o), PROVENANCE),
        (train, job_node("Convert", o), INPUT_OF),
    }
    job = job_node("Audit", o)
    assert {(u, k) for u, _v, k in G.in_edges(job, keys=True)} == {
        (fp(o), INPUT_OF),
        (commit_node("label_reference", history.ref0), INPUT_OF),
        (pipeline_node("Audit", 1), SPEC_OF),
    }
    assert (spec["Audit"], pipeline_node("Audit", 1), VERSION_OF) in set(G.edges(keys=True))
    assert G.nodes[pipeline_node("Audit", 1)]["spec"]["pipeline"]["name"] == "Audit"
    # The data commit introduced exactly its three orchids.
    assert files_of(G, changes(G, fp(o), INTRODUCED)) == {
        "/orchids/1.jpg",
        "/orchids/2.jpg",
        "/orchids/3.jpg",
    }
    assert G.nodes[fp(o)]["kind"] == DATA and G.nodes[train]["kind"] == OUTPUT
    assert G.nodes[spec["Train"]]["kind"] == SPEC
    # The audit node carries the verdict; the blocked Convert commit is no model.
    assert G.nodes[audit_node("Audit", o)]["verdict"] == "fail"
    assert G.nodes[audit_node("Audit", o)]["by_check"] == {"class_overlap": 1}
    assert model_node("Convert", o) not in G
    assert "gate blocked" in G.nodes[commit_node("Convert", o)]["error"]
    assert G.nodes[job_node("Convert", o)]["state"] == "failure"
    assert G.nodes[job_node("Train", o)]["data_total"] == 1


def test_upstream_of_a_model_is_exactly_the_data_behind_it(history, graph):
    G = graph
    up = upstream(G, model_node("Convert", history.cleanup))
    data = {n for n in up if G.nodes[n]["type"] == COMMIT and G.nodes[n]["kind"] == DATA}
    # initial and roses still contribute files; orchids does not (deleted); nothing later.
    assert data == {
        fp(history.initial),
        fp(history.roses),
        fp(history.cleanup),
        commit_node("label_reference", history.ref0),
    }
    files = {(G.nodes[n]["repo"], G.nodes[n]["path"], n) for n in up if G.nodes[n]["type"] == FILE}
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

    new_daisy = file_node(
        "flower_photos", "/daisy/1.jpg", hashlib.sha256(jpeg("daisy", 100)).hexdigest()
    )
    old_daisy = file_node(
        "flower_photos", "/daisy/1.jpg", hashlib.sha256(jpeg("daisy", 1)).hexdigest()
    )
    assert new_daisy in up and old_daisy not in up
    # The model, its audit and the pipeline versions behind it are upstream too.
    assert model_node("Train", history.cleanup) in up
    assert audit_node("Audit", history.cleanup) in up
    assert pipeline_node("Convert", 1) in up and job_node("Convert", history.cleanup) in up


def test_upstream_of_the_orchids_model_holds_orchids_and_nothing_later(history, graph):
    G = graph
    up = upstream(G, model_node("Train", history.orchids), kinds=[FILE, COMMIT])
    assert {"/orchids/1.jpg", "/daisy/1.jpg", "/roses/2.jpg"} <= files_of(G, up)
    assert fp(history.cleanup) not in up and fp(history.orchids) in up
    assert all(G.nodes[n]["type"] in (FILE, COMMIT) for n in up)
    assert len(files_of(G, up)) == 11
    with pytest.raises(LineageError):
        upstream(G, "commit:nope@0")


def test_downstream_is_the_blast_radius(history, graph):
    G = graph
    # Orchids were deleted by cleanup: only the orchids commit set touched them.
    assert downstream(G, fp(history.orchids), kinds=[MODEL, AUDIT]) == {
        model_node("Train", history.orchids),
        audit_node("Audit", history.orchids),
    }
    # Roses are still there: every later model and audit was built on them.
    roses = downstream(G, fp(history.roses), kinds=[MODEL, AUDIT])
    later = (history.roses, history.orchids, history.cleanup)
    assert {model_node("Train", c) for c in later} <= roses
    assert {
        model_node("Convert", c) for c in (history.roses, history.cleanup, history.ref1)
    } <= roses
    assert audit_node("Audit", history.ref1) in roses
    assert model_node("Train", history.initial) not in roses
    assert model_node("Convert", history.orchids) not in G
    # The blocked Convert commit and its failed job are in the blast radius of orchids.
    down = downstream(G, fp(history.orchids))
    assert job_node("Convert", history.orchids) in down
    # A file version's blast radius: the commits holding it, and what was built from them.
    import hashlib

    orchid = file_node(
        "flower_photos", "/orchids/1.jpg", hashlib.sha256(jpeg("tulips", 11)).hexdigest()
    )
    assert holding_commits(G, orchid) == {fp(history.orchids)}
    assert model_node("Train", history.orchids) in downstream(G, orchid)


def test_an_unchanged_input_appears_under_its_older_id(history, graph):
    G = graph
    convert = commit_node("Convert", history.ref1)
    assert {(u, k) for u, _v, k in G.in_edges(convert, keys=True) if k == PROVENANCE} >= {
        (commit_node("Train", history.cleanup), PROVENANCE),
        (commit_node("Audit", history.ref1), PROVENANCE),
    }
    assert commit_node("Train", history.ref1) not in G  # Train did not run for ref1
    assert (fp(history.cleanup), commit_node("Audit", history.ref1), PROVENANCE) in set(
        G.edges(keys=True)
    )
    assert data_commits(G, model_node("Convert", history.ref1)) == sorted(
        [fp(history.cleanup), commit_node("label_reference", history.ref1)]
    )


def test_training_data_diff_names_the_class_and_commit(history, graph):
    G = graph
    diff = training_data_diff(
        G, model_node("Train", history.roses), model_node("Train", history.orchids)
    )
    assert diff.classes_added == ["flower_photos:orchids"] and diff.classes_removed == []
    assert diff.added == [f"flower_photos:/orchids/{i}.jpg" for i in (1, 2, 3)]
    assert diff.removed == [] and diff.modified == []
    assert [(c.id, c.description, len(c.added)) for c in diff.commits] == [
        (history.orchids, "add orchids", 3)
    ]
    back = training_data_diff(
        G, model_node("Train", history.orchids), model_node("Train", history.cleanup)
    )
    assert back.classes_removed == ["flower_photos:orchids"]
    assert back.modified == ["flower_photos:/daisy/1.jpg"]
    assert [(c.id, len(c.removed), c.modified) for c in back.commits] == [
        (history.cleanup, 3, ["flower_photos:/daisy/1.jpg"])
    ]
    # Over two commits: initial → orchids adds roses and orchids, each under its own commit.
    wide = training_data_diff(
        G, model_node("Train", history.initial), commit_node("Train", history.orchids)
    )
    assert [c.id for c in wide.commits] == [history.roses, history.orchids]
    assert wide.class_counts_b["flower_photos:orchids"] == 3
    json.dumps(wide.as_dict())


def test_node_link_json_round_trips_with_iso_times(graph):
    data = to_node_link(graph)
    text = json.dumps(data)
    assert data["directed"] and data["multigraph"] and data["graph"]["schema"] == SCHEMA
    commit = next(n for n in data["nodes"] if n["type"] == COMMIT and n.get("started"))
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", commit["started"])
    assert {"source", "target", "key", "kind"} <= set(data["links"][0])
    back = from_node_link(json.loads(text))
    assert set(back.nodes) == set(graph.nodes)
    assert set(back.edges(keys=True)) == set(graph.edges(keys=True))


def test_the_graph_is_deterministic(history, graph):
    store = history.open()
    try:
        again = build_graph(store)
    finally:
        store.close()
    assert canonical(again) == canonical(graph)


def test_files_are_optional(history, graph):
    store = history.open()
    try:
        bare = build_graph(store, include_files=False)
        some = build_graph(store, include_files=["label_reference"])
    finally:
        store.close()
    assert not any(a["type"] == FILE for _n, a in bare.nodes(data=True))
    assert set(bare.nodes) == {n for n in graph if graph.nodes[n]["type"] != FILE}
    assert {a["repo"] for _n, a in some.nodes(data=True) if a["type"] == FILE} == {
        "label_reference"
    }
    with pytest.raises(LineageError, match="no file versions of flower_photos"):
        live_files(bare, fp(history.orchids))


def test_subgraph_directions(history, graph):
    center = model_node("Train", history.roses)
    up = subgraph(graph, center, "upstream")
    both = subgraph(graph, center, "both")
    assert center in up and fp(history.roses) in up
    assert commit_node("Convert", history.roses) not in up
    assert commit_node("Convert", history.roses) in both
    assert not any(k == CONTAINS for _u, _v, k in both.edges(keys=True))
    assert both.graph["center"] == center
    with pytest.raises(ValueError):
        subgraph(graph, center, "sideways")


def test_dot_escapes_attacker_controlled_labels(store, run_jobs):
    nasty_path = '/x"y/<script>"x"</script>.jpg'  # paths cannot hold backslashes
    nasty_desc = '<script>"x"</script> \\N \\G\nline two'
    store.create_repo("data")
    with store.start_commit("data", description=nasty_desc) as w:
        w.put_bytes(nasty_path, b"payload")
    dot = to_dot(build_graph(store))
    quoted = re.compile(r'"(?:[^"\\]|\\.)*"')
    for line in dot.splitlines():
        bare = quoted.sub("", line)
        assert '"' not in bare and "<" not in bare and "\\" not in bare, line
    strings = [s[1:-1] for s in quoted.findall(dot)]
    unescaped = [re.sub(r"\\(.)", r"\1", s) for s in strings]
    assert nasty_path in unescaped  # the file's label, shown literally
    assert '<script>"x"</script> \\N \\G line two' in unescaped  # the commit's tooltip
    assert '<script>\\"x\\"</script> \\\\N' in dot
    assert dot_quote("a" * 200).endswith('…"') and len(dot_quote("a" * 200)) == 82


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
        assert record_export(store, export) == "exp-1"
        generated = record_export(
            store, {"model": {"repo": "Train", "commit": history.roses}, "forced": True}
        )
        with pytest.raises(TulipError, match="not allowed"):
            record_export(store, {**export, "id": "../escape"})
        with pytest.raises(TulipError, match="names no model"):
            record_export(store, {"id": "x"})
        G = build_graph(store)
    finally:
        store.close()
    node = export_node("exp-1")
    assert G.nodes[node]["targets"] == ["android", "ios"]
    assert G.nodes[node]["record"]["repo"] == EXPORTS_REPO
    assert (model_node("Convert", history.cleanup), node, EXPORTED) in set(G.edges(keys=True))
    assert (audit_node("Audit", history.cleanup), node, GATED) in set(G.edges(keys=True))
    assert G.nodes[export_node(generated)]["forced"] is True
    assert repo_node(EXPORTS_REPO) not in G
    # The export is in the blast radius of the data behind it, and its data is upstream of it.
    assert node in downstream(G, fp(history.roses))
    assert fp(history.cleanup) in upstream(G, node)


def test_node_for_ref(history):
    store = history.open()
    try:
        assert node_for_ref(store, "Convert@master") == commit_node("Convert", history.ref1)
        assert node_for_ref(store, "flower_photos@master^") == fp(history.orchids)
        f = node_for_ref(store, "flower_photos@master:/roses/1.jpg")
        assert f.startswith("file:flower_photos:/roses/1.jpg@")
        with pytest.raises(LineageError, match="directory"):
            node_for_ref(store, "flower_photos@master:/roses")
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
        other = build_graph(store)
    finally:
        store.close()
    assert canonical(other, ignore=TIMES) != canonical(graph, ignore=TIMES)
    assert canonical(other, ignore=TIMES, relabel=True) == canonical(
        graph, ignore=TIMES, relabel=True
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
        G = build_graph(store, include_files=False)
        add_file_versions(G, store, ["photos"], method=method)
        graphs[method] = G
    assert canonical(graphs["history"]) == canonical(graphs["walk"])
    G = graphs["history"]
    node = lambda c: commit_node("photos", c)  # noqa: E731
    assert set(live_files(G, node(d1))) == {"/b/1.jpg", "/d/1.jpg"}
    assert set(live_files(G, node(c2))) == {"/a/1.jpg", "/b/1.jpg", "/c/1.jpg"}
    assert (G.nodes[node(c2)]["files_added"], G.nodes[node(c2)]["files_modified"]) == (1, 1)
    assert (G.nodes[node(d1)]["files_deleted"], G.nodes[node(d1)]["files"]) == (1, 2)
    # b/1 from c1 lives on both branches; a/1 from c1 was replaced on master, deleted on dev.
    assert {node(c1), node(c2), node(d1)} <= influenced_commits(G, node(c1))
    a1 = next(n for n in changes(G, node(c1), INTRODUCED) if "/a/" in n)
    assert holding_commits(G, a1) == {node(c1)}
    with pytest.raises(ValueError):
        add_file_versions(build_graph(store, include_files=False), store, ["photos"], method="x")
