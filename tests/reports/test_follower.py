"""Alerts on a cluster: the follower announces each Audit job of the pachd protocol double once,
through a restart and a crash half-way, starting from when it first ran, and the deliverer
sends what it announced. The Audit jobs are the double's emulation of the real stage: an
``audit.json`` whose verdict fails when the data holds ``/orchids``."""

from __future__ import annotations

import json

import pytest

from auditor.findings import Finding, audit_document
from pipelines.embedded.store import EmbeddedStore
from pipelines.pachyderm import PachydermBackend
from reports.alerts.delivery import Deliverer, Outcome
from reports.alerts.follower import Follower
from reports.alerts.tables import AlertTables
from tests.pachyderm_double import DoubleJob, PachdProtocolDouble
from tests.reports.alert_factory import config, endpoint

AUDIT_SPEC = {
    "pipeline": {"name": "Audit"},
    "transform": {"image": "registry.example/tulip:1", "cmd": ["python3", "-m", "auditor.stage"]},
    "input": {"pfs": {"repo": "flower_photos", "glob": "/"}},
}


def audit_transform(job: DoubleJob) -> dict[str, bytes]:
    files = job.inputs["flower_photos"]
    orchids = sorted(p for p in files if p.startswith("/orchids/"))
    findings = (
        [Finding("lookalike_class", "fail", ["orchids", "tulips"], 0.9, orchids, "tulips")]
        if orchids
        else []
    )
    doc = audit_document(
        findings,
        data_ref={
            "repo": "flower_photos",
            "branch": "master",
            "commit": job.input_commits["flower_photos"],
        },
        reference_ref=None,
        labels=[p.split("/")[1] for p in sorted(files)],
    )
    return {"/audit.json": json.dumps(doc).encode()}


@pytest.fixture
def cluster():
    with PachdProtocolDouble(auto_run=False) as pachd:
        pachd.transforms["Audit"] = audit_transform
        from pachyderm_sdk import Client

        b = PachydermBackend(Client.from_pachd_address(pachd.address), address=pachd.address)
        b.check()
        b.create_repo("flower_photos")
        yield b, pachd
        b.close()


def commit(b, pachd, files: dict[str, bytes], *, deletes=()) -> str:
    with b.start_commit("flower_photos", "master") as w:
        for p in deletes:
            w.delete(p)
        for p, data in files.items():
            w.put_bytes(p, data)
    pachd.run_pending()
    return w.id


def home(tmp_path) -> EmbeddedStore:
    return EmbeddedStore(tmp_path / "alerts-home")


def events(h: EmbeddedStore) -> list[tuple[str, str]]:
    return [(e.type, e.subject) for e in h.outbox.since(0)]


def test_each_verdict_is_announced_once_across_restarts(cluster, tmp_path):
    b, pachd = cluster
    commit(b, pachd, {"/daisy/1.jpg": b"d"})  # before Audit exists
    b.create_pipeline(AUDIT_SPEC)
    pachd.run_pending()  # the Audit job over the existing data: before the follower
    h = home(tmp_path)
    f = Follower(b, h, cluster_id=pachd.address)
    assert f.poll().events == [] and events(h) == []  # it starts from now

    bad = commit(b, pachd, {"/orchids/1.jpg": b"tulip"})
    first = f.poll()
    assert first.jobs == 1 and events(h) == [("audit.failed", f"flower_photos@{bad}")]
    assert f.poll().events == []  # polled again: nothing new
    h.close()

    # a restarted follower (a new process: a new store handle, the same home)
    h = home(tmp_path)
    f = Follower(b, h, cluster_id=pachd.address)
    assert f.poll().events == []
    assert events(h) == [("audit.failed", f"flower_photos@{bad}")]
    fixed = commit(b, pachd, {}, deletes=["/orchids/1.jpg"])
    f.poll()
    assert events(h) == [
        ("audit.failed", f"flower_photos@{bad}"),
        ("audit.recovered", f"flower_photos@{fixed}"),
    ]
    (recovered,) = [e for e in h.outbox.since(0) if e.type == "audit.recovered"]
    assert recovered.data["cluster"] == pachd.address
    assert recovered.data["audit"]["repo"] == "Audit"
    h.close()


def test_a_follower_killed_between_its_events_and_its_mark_announces_once(
    cluster, tmp_path, monkeypatch
):
    b, pachd = cluster
    b.create_pipeline(AUDIT_SPEC)
    h = home(tmp_path)
    f = Follower(b, h, cluster_id=pachd.address)
    bad = commit(b, pachd, {"/orchids/1.jpg": b"tulip"})

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # the process dies inside the transaction

    monkeypatch.setattr(AlertTables, "mark_followed", killed)
    with pytest.raises(KeyboardInterrupt):
        f.poll()
    monkeypatch.undo()
    h.close()
    h = home(tmp_path)
    assert events(h) == []  # the events went with the transaction
    f = Follower(b, h, cluster_id=pachd.address)
    f.poll()
    f.poll()
    assert events(h) == [("audit.failed", f"flower_photos@{bad}")]
    h.close()


def test_replay_announces_jobs_from_before_and_the_deliverer_sends_them_once(cluster, tmp_path):
    b, pachd = cluster
    b.create_pipeline(AUDIT_SPEC)
    bad = commit(b, pachd, {"/orchids/1.jpg": b"tulip"})
    h = home(tmp_path)
    f = Follower(b, h, cluster_id=pachd.address, replay_since=0.0)
    assert len(f.poll().events) == 1  # (the job over the empty repo announces nothing)
    sent = []

    def send(url, body, headers, *, timeout):
        sent.append((headers["webhook-id"], json.loads(body)))
        return Outcome(200)

    d = Deliverer(h, config(endpoint("http://127.0.0.1:9/hook")), send=send)
    d.run_once()
    d.run_once()
    assert len(sent) == 1
    body = sent[0][1]
    assert body["type"] == "dev.tulip.audit.failed" and body["subject"] == f"flower_photos@{bad}"
    # a second follower of the same cluster (another process) finds the job announced
    assert Follower(b, h, cluster_id=pachd.address, replay_since=0.0).poll().jobs == 0
    h.close()


def test_tulip_alerts_follow_once_on_the_cluster(cluster, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from pipelines.pachyderm import PACHD_ADDRESS_ENV
    from tulip.cli.base import Settings
    from tulip.cli.main import cli as tulip_main

    b, pachd = cluster
    b.create_pipeline(AUDIT_SPEC)
    bad = commit(b, pachd, {"/orchids/1.jpg": b"tulip"})
    monkeypatch.setenv(PACHD_ADDRESS_ENV, pachd.address)
    args = ["--backend", "pachyderm", "alerts", "follow", "--home", str(tmp_path / "h"), "--once"]
    r = CliRunner().invoke(tulip_main, [*args, "--replay", "1d"], obj=Settings())
    assert r.exit_code == 0, r.output
    assert "1 event(s)" in r.stderr
    h = EmbeddedStore(tmp_path / "h")
    assert events(h) == [("audit.failed", f"flower_photos@{bad}")]
    h.close()
    r = CliRunner().invoke(tulip_main, args, obj=Settings())
    assert r.exit_code == 0 and "0 event(s)" in r.stderr
    bad_since = CliRunner().invoke(tulip_main, [*args, "--replay", "yesterday"], obj=Settings())
    assert bad_since.exit_code == 2 and "neither a span" in bad_since.output
