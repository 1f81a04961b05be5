"""Where a commit set stands and what the gate did, on a real store with small shell stages that
write what Audit and Convert write: an audit.json with the verdict the data asks for, and a
Convert that refuses (``gate blocked: ...``, exit 3) when the audit failed."""

from __future__ import annotations

import json

import pytest

from auditor.status import (
    BLOCKED,
    OPEN,
    WaitTimedOut,
    audit_verdict,
    commit_set_status,
    gate_state,
    wait_for_commit_set,
)
from tests.stand_ins import AUDIT_SPEC, GATED_CONVERT_SPEC


def put_verdict(store, verdict: str) -> str:
    with store.start_commit("flower_photos", description=f"data that audits {verdict}") as w:
        w.put_bytes("/verdict.txt", verdict.encode())
        return w.id


@pytest.fixture
def pipelines(store):
    store.create_repo("flower_photos")
    store.create_pipeline(AUDIT_SPEC)
    store.create_pipeline(GATED_CONVERT_SPEC)
    return store


def test_a_passing_round_opens_the_gate(pipelines, run_jobs):
    commit = put_verdict(pipelines, "pass")
    run_jobs(pipelines)
    status = commit_set_status(pipelines, commit)
    assert status.finished
    assert [(a.commit.repo, a.verdict, a.data["commit"]) for a in status.audits] == [
        ("Audit", "pass", commit)
    ]
    [gate] = status.gates
    assert (gate.commit.repo, gate.state, gate.audit.verdict) == ("Convert", OPEN, "pass")
    assert gate.describe().startswith(f"open: Convert@{commit} published /optimized_graph.lite")
    json.dumps(status.as_dict())


def test_a_failing_round_is_blocked_with_the_gates_reason(pipelines, run_jobs):
    put_verdict(pipelines, "pass")
    run_jobs(pipelines)
    bad = put_verdict(pipelines, "fail")
    run_jobs(pipelines)
    convert = pipelines.inspect_commit("Convert", bad)
    gate = gate_state(pipelines, convert)
    assert gate.state == BLOCKED and gate.audit.verdict == "fail"
    assert (
        gate.reason
        == f"gate blocked: audit {bad} failed: 1 findings (lookalike_class orchids/tulips)"
    )
    assert gate.describe().startswith("BLOCKED: gate blocked: audit")
    assert audit_verdict(pipelines, convert) is None  # a carried-over audit.json is not its own
    assert audit_verdict(pipelines, pipelines.inspect_commit("Audit", bad)).verdict == "fail"
    assert gate_state(pipelines, pipelines.inspect_commit("flower_photos", bad)) is None


def test_waiting_reports_each_pipeline_once_and_ends_with_the_gate(pipelines, run_jobs):
    commit = put_verdict(pipelines, "fail")
    run_jobs(pipelines)
    heard = []
    status = wait_for_commit_set(pipelines, commit, timeout=30, progress=heard.append)
    assert sorted(c.repo for c in heard) == ["Audit", "Convert", "flower_photos"]
    assert [g.state for g in status.gates] == [BLOCKED]


def test_waiting_past_the_timeout_names_what_is_still_running(pipelines):
    commit = put_verdict(pipelines, "pass")  # jobs never run here: the store does not autorun
    with pytest.raises(WaitTimedOut) as caught:
        wait_for_commit_set(pipelines, commit, timeout=0.3, poll=0.1)
    message = str(caught.value)
    assert message.startswith(f"commit set {commit} not finished after 0.3s: still running")
    assert f"Audit@{commit}" in message and f"Convert@{commit}" in message


def test_wait_commit_and_inspect_commit_say_what_the_gate_did(tulip_cli, tmp_path):
    for name, spec in (("audit", AUDIT_SPEC), ("convert", GATED_CONVERT_SPEC)):
        (tmp_path / f"{name}.json").write_text(json.dumps(spec))
    tulip_cli("create", "repo", "flower_photos")
    tulip_cli("create", "pipeline", "-f", str(tmp_path / "audit.json"))
    tulip_cli("create", "pipeline", "-f", str(tmp_path / "convert.json"))
    put = tulip_cli(
        "put", "file", "flower_photos@master:/verdict.txt", "-f", "-", "-o", "json", input=b"fail"
    )
    commit = json.loads(put.stdout)["id"]
    waited = tulip_cli("wait", "commit", f"flower_photos@{commit}", "--timeout", "120")
    progress = waited.stderr.decode().splitlines()
    assert progress[0] == f"waiting for commit set {commit}"
    assert sorted(line.split()[0].split("@")[0] for line in progress[1:]) == [
        "Audit",
        "Convert",
        "flower_photos",
    ]
    said = waited.stdout.decode().splitlines()
    assert f"Audit: FAIL (1 findings) Audit@{commit}" in said
    assert said[-1].startswith(f"Gate: BLOCKED: gate blocked: audit {commit} failed")

    shown = tulip_cli("inspect", "commit", f"Convert@{commit}").stdout.decode()
    assert "Gate: BLOCKED: gate blocked: audit" in shown
    gate = json.loads(tulip_cli("inspect", "commit", f"Convert@{commit}", "-o", "json").stdout)
    assert gate["gate"]["state"] == "blocked" and gate["gate"]["audit"]["verdict"] == "fail"
    audit = json.loads(tulip_cli("inspect", "commit", f"Audit@{commit}", "-o", "json").stdout)
    assert audit["audit"]["verdict"] == "fail" and "gate" not in audit
