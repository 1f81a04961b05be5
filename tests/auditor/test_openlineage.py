"""OpenLineage run events from the lineage graph: they serialise and name the right datasets."""

from __future__ import annotations

import json

import pytest

from auditor import openlineage as OL
from auditor.lineage.build import build_graph
from auditor.lineage.graph import JOB, job_node

from .lineage_history import shared_history


@pytest.fixture(scope="session")
def history(tmp_path_factory):
    return shared_history(tmp_path_factory)


@pytest.fixture(scope="module")
def graph(history):
    s = history.open()
    try:
        return build_graph(s, include_files=False), OL.namespace_for(s)
    finally:
        s.close()


def test_events_for_a_job_carry_its_input_commits_and_output(history, graph, tmp_path):
    G, ns = graph
    assert ns.startswith("tulip://") and ns.endswith("/store")
    job = job_node("Audit", history.ref1)
    events = OL.run_events(G, namespace=ns, jobs=[job])
    assert [e.eventType.value for e in events] == ["START", "COMPLETE"]
    path = tmp_path / "events.jsonl"
    assert OL.write_events(events, path) == 2
    start, done = [json.loads(line) for line in path.read_text().splitlines()]
    assert start["run"]["runId"] == done["run"]["runId"] == OL.run_id("Audit", history.ref1)
    assert start["job"] == done["job"]
    assert (start["job"]["namespace"], start["job"]["name"]) == (ns, "Audit")
    # flower_photos did not change in ref1's commit set: its older commit is the version read.
    inputs = {d["name"]: d["facets"]["version"]["datasetVersion"] for d in start["inputs"]}
    assert inputs == {
        "flower_photos@master": history.cleanup,
        "label_reference@master": history.ref1,
    }
    assert start["inputs"][0]["facets"]["tulip_commit"]["repo"] in (
        "flower_photos",
        "label_reference",
    )
    [out] = done["outputs"]
    assert (out["name"], out["facets"]["version"]["datasetVersion"]) == (
        "Audit@master",
        history.ref1,
    )
    assert done["run"]["facets"]["tulip_datums"]["total"] == 1
    assert start["eventTime"] <= done["eventTime"]
    assert start["producer"].startswith("https://")


def test_a_blocked_job_ends_in_fail_with_its_reason(history, graph):
    G, ns = graph
    events = OL.run_events(G, namespace=ns, jobs=[job_node("Convert", history.orchids)])
    end = json.loads(OL.to_json_lines(events).splitlines()[-1])
    assert end["eventType"] == "FAIL"
    assert "gate blocked" in end["run"]["facets"]["errorMessage"]["message"]


def test_every_job_gets_one_start_and_one_end(graph):
    G, ns = graph
    events = OL.run_events(G, namespace=ns)
    jobs = [n for n, a in G.nodes(data=True) if a["type"] == JOB]
    assert len(events) == 2 * len(jobs)
    runs = {}
    for e in events:
        runs.setdefault(e.run.runId, []).append(e.eventType.value)
    assert all(v == ["START", "COMPLETE"] or v == ["START", "FAIL"] for v in runs.values())
    assert [e.eventTime for e in events] == sorted(e.eventTime for e in events)
