"""`tulip alerts list / retry / deliver / test` against a real store and a loopback receiver."""

from __future__ import annotations

import json

import pytest

from tests.reports.receiver import Receiver, Reply, free_port

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def cli(tulip_cli):
    def run(*args, **kw):
        return tulip_cli(*args, env={"TULIP_NO_AUTORUN": "1", **kw.pop("env", {})}, **kw)

    run.root = tulip_cli.root
    run("create", "repo", "data")
    return run


def _config(root, url: str, **delivery) -> None:
    settings = "".join(f"{k} = {v}\n" for k, v in {"min_delay_seconds": 0.01, **delivery}.items())
    (root / "alerts.toml").write_text(
        f"[delivery]\n{settings}"
        f'[[endpoint]]\nname = "hook"\nurl = "{url}"\nsecret = "{SECRET}"\nevents = ["job.*", "alert.*"]\n'
    )


def _failing_job(cli) -> None:
    spec = {"pipeline": {"name": "Broken"}, "transform": {"cmd": ["bash"], "stdin": ["exit 1"]},
            "input": {"pfs": {"repo": "data", "glob": "/"}}, "datumTries": 1}  # fmt: skip
    (cli.root.parent / "spec.json").write_text(json.dumps(spec))
    cli("create", "pipeline", "-f", str(cli.root.parent / "spec.json"))
    (cli.root.parent / "x.txt").write_text("x")
    cli("put", "file", "data@master:/x.txt", "-f", str(cli.root.parent / "x.txt"))
    from pipelines.embedded.store import EmbeddedStore
    from pipelines.runner import Runner

    store = EmbeddedStore(cli.root)
    try:
        Runner(store).run_until_idle()
    finally:
        store.close()


def test_list_retry_and_deliver(cli, monkeypatch):
    monkeypatch.setenv("TULIP_NO_AUTORUN", "1")
    port = free_port()
    _config(cli.root, f"http://127.0.0.1:{port}/hook")
    _failing_job(cli)
    (event,) = json.loads(cli("alerts", "list", "-o", "json").stdout)
    assert event["type"] == "job.failed" and event["deliveries"] == []
    out = cli("alerts", "deliver", "--once").stdout.decode()
    assert "1 to retry" in out  # nobody listens yet
    (event,) = json.loads(cli("alerts", "list", "-o", "json").stdout)
    (d,) = event["deliveries"]
    assert d["state"] == "retrying" and d["attempts"] == 1 and "Connection" in d["last_error"]
    table = cli("alerts", "list").stdout.decode()
    assert "hook" in table and "retrying" in table and event["id"][:12] in table
    rx = Receiver(port, plan=[Reply(410)]).start()
    try:
        out = cli("alerts", "retry", event["id"][:10], "--no-deliver").stdout.decode()
        assert "hook: retrying -> pending" in out
        cli("alerts", "deliver", "--once")
        (event,) = json.loads(cli("alerts", "list", "-o", "json").stdout)
        assert event["deliveries"][0]["state"] == "disabled"
        assert "disabled" in cli("alerts", "list").stdout.decode()
        cli("alerts", "retry", event["id"], "--no-deliver")  # lifts the 410 disablement
        assert "1 delivered" in cli("alerts", "deliver", "--once").stdout.decode()
        out = cli("alerts", "retry", event["id"], "--no-deliver").stdout.decode()
        assert "already delivered; not sent again" in out
        assert "attempted 0" in cli("alerts", "deliver", "--once").stdout.decode()
        assert rx.ids() == [event["id"], event["id"]]  # the 410 attempt and the delivery
    finally:
        rx.stop()
    r = cli("alerts", "retry", "ffffffffffff", check=False)
    assert r.returncode == 2 and b"no event" in r.stderr


def test_alerts_test_sends_a_signed_ping(cli):
    from reports.alerts.messages import verify

    rx = Receiver().start()
    try:
        _config(cli.root, rx.url)
        out = cli("alerts", "test").stdout.decode()
        assert "hook: delivered (200)" in out
        body = verify(SECRET, rx.requests[0].headers, rx.requests[0].body)
        assert body["type"] == "dev.tulip.alert.test"
    finally:
        rx.stop()


def test_without_endpoints(cli):
    r = cli("alerts", "test", check=False)
    assert r.returncode == 2 and b"no endpoints configured" in r.stderr
    assert cli("alerts", "deliver").returncode == 0
