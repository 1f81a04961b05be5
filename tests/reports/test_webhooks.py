"""Webhook delivery against a real HTTP receiver on loopback: signatures, retries, 410, 429,
timeouts, crash and restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from reports.alerts.config import AlertConfigError, load_config, parse_config
from reports.alerts.delivery import (
    DELIVERED,
    DISABLED,
    FAILED,
    PENDING,
    RETRYING,
    Deliverer,
    retry_after_seconds,
)
from reports.alerts.events import list_events, retry
from reports.alerts.messages import hub_signature, sign, verify
from tests.reports.alert_factory import (
    SECRET,
    Clock,
    audited_store,
    config,
    delivery,
    emit,
    endpoint,
    endpoint_state,
)
from tests.reports.receiver import Receiver, Reply, free_port


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A store with a failed audit commit (``store.audit_commit``); events come from ``emit``."""
    monkeypatch.setenv("TULIP_NO_AUTORUN", "1")
    s = audited_store(tmp_path / "store")
    yield s
    s.close()


# -- signatures -------------------------------------------------------------------------------


def test_standard_webhooks_known_vector():
    """The Standard Webhooks reference vector (as in its libraries' tests)."""
    headers = sign(SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert headers["webhook-signature"] == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert headers["webhook-id"] == "msg_p5jXN8AQM9LWM0D4loKWxJek"
    assert headers["webhook-timestamp"] == "1614265330"


def test_github_hub_signature_known_vector():
    """GitHub's documented example for X-Hub-Signature-256."""
    assert (
        hub_signature("It's a Secret to Everybody", b"Hello, World!")
        == "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )


def test_signatures_verify_with_the_reference_library():
    standardwebhooks = pytest.importorskip("standardwebhooks")
    body = b'{"specversion":"1.0","data":{"x":"<script>"}}'
    headers = sign(SECRET, "evt_1", int(time.time()), body)
    assert standardwebhooks.Webhook(SECRET).verify(body, headers) == json.loads(body)
    assert verify(SECRET, headers, body) == json.loads(body)
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(SECRET).verify(body + b" ", headers)


def test_verify_rejects_tampering_and_replays():
    from reports.alerts.messages import SignatureError

    body = b"{}"
    headers = sign(SECRET, "evt_1", int(time.time()), body)
    with pytest.raises(SignatureError, match="no webhook-signature"):
        verify(SECRET, headers, b'{"x":1}')
    old = sign(SECRET, "evt_1", int(time.time()) - 3600, body)
    with pytest.raises(SignatureError, match="5 minutes"):
        verify(SECRET, old, body)
    other = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"
    with pytest.raises(SignatureError):
        verify(other, headers, body)


# -- configuration ----------------------------------------------------------------------------


def test_config_file_toml_json_and_errors(tmp_path, monkeypatch):
    (tmp_path / "alerts.toml").write_text(
        'base_url = "http://127.0.0.1:8080/"\n[delivery]\ntimeout_seconds = 3\n'
        '[[endpoint]]\nname = "oncall"\nurl = "https://example.invalid/h"\n'
        f'secret = "{SECRET}"\nevents = ["audit.*"]\n'
        '[[endpoint]]\nname = "chat"\nurl = "https://example.invalid/s"\nformat = "slack"\n'
    )
    c = load_config(tmp_path)
    assert [e.name for e in c.endpoints] == ["oncall", "chat"]
    assert c.base_url == "http://127.0.0.1:8080" and c.delivery.timeout_seconds == 3.0
    assert c.endpoints[0].wants("audit.failed") and not c.endpoints[0].wants("job.failed")
    assert c.endpoints[1].wants("anything") and c.endpoints[1].secret is None
    (tmp_path / "a.json").write_text(json.dumps({"endpoints": [endpoint("http://x.invalid/")]}))
    monkeypatch.setenv("TULIP_ALERTS", str(tmp_path / "a.json"))
    assert load_config(tmp_path).endpoints[0].name == "hook"
    for bad, message in (
        ({"endpoint": [{"name": "a", "url": "ftp://x", "secret": SECRET}]}, "http"),
        ({"endpoint": [{"name": "a", "url": "http://x"}]}, "no secret"),
        ({"endpoint": [{"name": "a", "url": "http://x", "secret": "plain"}]}, "whsec_"),
        ({"endpoint": [{"name": "a b", "url": "http://x", "secret": SECRET}]}, "name"),
        ({"delivery": {"timeout": 1}}, "unknown"),
        ({"endpoint": [endpoint("http://x"), endpoint("http://y")]}, "unique"),
    ):
        with pytest.raises(AlertConfigError, match=message):
            parse_config(bad)
    monkeypatch.delenv("TULIP_ALERTS")
    nowhere = load_config(tmp_path / "nowhere")
    assert nowhere.endpoints == () and nowhere.path == tmp_path / "nowhere" / "alerts.toml"


# -- delivery against a real receiver ------------------------------------------------------------


def test_signed_cloudevent_reaches_the_receiver_and_verifies(store):
    standardwebhooks = pytest.importorskip("standardwebhooks")
    rx = Receiver().start()
    try:
        eid = emit(store)
        cfg = config(endpoint(rx.url), base_url="http://reports.example:8080")
        stats = Deliverer(store, cfg).run_once()
        assert stats.delivered == 1
        (req,) = rx.requests
        headers = {k.lower(): v for k, v in req.headers.items()}
        body = standardwebhooks.Webhook(SECRET).verify(req.body, headers)
        assert verify(SECRET, headers, req.body) == body
        assert headers["x-hub-signature-256"] == hub_signature(SECRET, req.body)
        assert headers["content-type"].startswith("application/cloudevents+json")
        assert headers["webhook-id"] == body["id"] == eid
        assert body["specversion"] == "1.0" and body["type"] == "dev.tulip.audit.failed"
        assert body["subject"] == f"Audit@{store.audit_commit}"
        assert body["source"].startswith("tulip://") and body["time"].endswith("Z")
        assert body["datacontenttype"] == "application/json"
        data = body["data"]
        assert data["verdict"] == "fail"
        assert data["top_findings"][0]["check"] == "class_overlap"  # failing first
        assert data["blamed_commits"][0] == {"repo": "flower_photos", "commit": "b" * 32}
        assert (
            data["links"]["report"]
            == f"http://reports.example:8080/audits/Audit/{store.audit_commit}"
        )
        assert delivery(store, eid)["state"] == DELIVERED
    finally:
        rx.stop()


def test_slack_format_is_an_incoming_webhook_body_with_escaped_text(store):
    rx = Receiver().start()
    try:
        emit(store)
        cfg = config({"name": "chat", "url": rx.url, "format": "slack", "events": ["*"]})
        Deliverer(store, cfg).run_once()
        body = json.loads(rx.requests[0].body)
        assert set(body) == {"text", "blocks"}
        assert body["blocks"][0]["type"] == "header"
        section = body["blocks"][1]["text"]["text"]
        assert "orchids &lt;b&gt;are&lt;/b&gt; tulips" in section and "<b>" not in section
        assert "webhook-signature" not in {k.lower() for k in rx.requests[0].headers}
    finally:
        rx.stop()


def test_a_receiver_that_is_down_then_up_gets_the_event_exactly_once(store):
    port = free_port()
    clock = Clock()
    cfg = config(endpoint(f"http://127.0.0.1:{port}/hook"), backoff_base_seconds=10)
    d = Deliverer(store, cfg, clock=clock, rng=lambda: 0.5)
    eid = emit(store)
    stats = d.run_once()  # nobody listens: connection refused
    assert stats.retrying == 1
    row = delivery(store, eid)
    assert (
        row["state"] == RETRYING and row["attempts"] == 1 and "ConnectionError" in row["last_error"]
    )
    assert row["next_attempt"] == pytest.approx(clock() + 5)  # half of the 10 s ceiling (rng 0.5)
    rx = Receiver(port).start()
    try:
        clock.advance(4)
        assert d.run_once().attempted == 0  # not due yet
        clock.advance(1)
        assert d.run_once().delivered == 1
        for _ in range(3):
            clock.advance(3600)
            assert d.run_once().attempted == 0  # acknowledged: never again
        assert rx.ids() == [eid]
        assert delivery(store, eid)["state"] == DELIVERED
    finally:
        rx.stop()


def test_410_gone_disables_the_endpoint_until_retried(store):
    rx = Receiver(plan=[Reply(410)]).start()
    try:
        cfg = config(endpoint(rx.url))
        first, second = emit(store), emit(store, "job.failed", "Train@" + "f" * 32)
        stats = Deliverer(store, cfg).run_once()
        assert stats.disabled == 1 and stats.attempted == 1  # the second is held back
        assert delivery(store, first)["state"] == DISABLED
        assert delivery(store, second)["state"] == PENDING
        state = endpoint_state(store)
        assert state.disabled and "410" in state.reason
        assert Deliverer(store, cfg).run_once().attempted == 0
        listed = {e["id"]: e for e in list_events(store)}
        assert listed[second]["deliveries"][0]["endpoint_disabled"]
        changes = retry(store, first[:8], cfg)
        assert changes == [{"endpoint": "hook", "was": DISABLED, "now": PENDING}]
        assert Deliverer(store, cfg).run_once().delivered == 2
        assert rx.ids() == [first, first, second]
    finally:
        rx.stop()


def test_429_retry_after_is_honoured_in_seconds_and_as_an_http_date(store):
    rx = Receiver(
        plan=[Reply(429, {"Retry-After": "120"}), Reply(503, {"Retry-After": "x"})]
    ).start()
    try:
        clock = Clock()
        cfg = config(endpoint(rx.url), backoff_base_seconds=1, min_delay_seconds=1)
        d = Deliverer(store, cfg, clock=clock, rng=lambda: 1.0)
        eid = emit(store)
        d.run_once()
        row = delivery(store, eid)
        assert row["last_status"] == 429 and row["next_attempt"] == pytest.approx(clock() + 120)
        clock.advance(119)
        assert d.run_once().attempted == 0
        clock.advance(1)
        d.run_once()  # 503 with a useless Retry-After: backoff (attempt 2, ceiling 2 s)
        row = delivery(store, eid)
        assert row["last_status"] == 503 and row["next_attempt"] == pytest.approx(clock() + 2)
        clock.advance(2)
        assert d.run_once().delivered == 1
        assert len(rx.requests) == 3
    finally:
        rx.stop()
    now = 1_700_000_000.0
    assert retry_after_seconds("Tue, 14 Nov 2023 22:13:40 GMT", now=now) == pytest.approx(20)
    assert retry_after_seconds("garbage", now=now) is None


def test_backoff_has_full_jitter_under_an_exponential_ceiling_and_gives_up_after_a_day(store):
    clock = Clock()
    cfg = config(
        endpoint(f"http://127.0.0.1:{free_port()}/"),
        backoff_base_seconds=5,
        backoff_max_seconds=3600,
        min_delay_seconds=1,
        min_attempts=3,
    )
    top = Deliverer(store, cfg, clock=clock, rng=lambda: 1.0)
    assert [top.backoff(n) for n in (1, 2, 3, 4, 12, 30)] == [5, 10, 20, 40, 3600, 3600]
    assert Deliverer(store, cfg, rng=lambda: 0.0).backoff(5) == 1  # the floor
    eid = emit(store)
    attempts = 0
    while delivery(store, eid).get("state") != FAILED:
        top.run_once()
        attempts += 1
        row = delivery(store, eid)
        if row["state"] == RETRYING:
            clock.t = row["next_attempt"]
        assert attempts < 100
    row = delivery(store, eid)
    assert row["next_attempt"] is None and row["attempts"] == attempts
    assert 20 <= attempts <= 40  # about a day of capped exponential backoff


def test_a_hanging_receiver_times_out_and_is_retried(store):
    release = threading.Event()
    rx = Receiver(plan=[Reply(200, hold=release)]).start()
    try:
        cfg = config(endpoint(rx.url), timeout_seconds=0.5)
        eid = emit(store)
        t0 = time.perf_counter()
        Deliverer(store, cfg).run_once()
        assert time.perf_counter() - t0 < 5
        row = delivery(store, eid)
        assert row["state"] == RETRYING and "Timeout" in row["last_error"]
    finally:
        release.set()
        rx.stop()


def test_new_endpoints_get_recent_events_only(store):
    rx = Receiver().start()
    try:
        old = emit(store, age=3 * 86400)
        new = emit(store)
        Deliverer(store, config(endpoint(rx.url))).run_once()
        assert rx.ids() == [new]
        assert retry(store, old, config(endpoint(rx.url)))[0]["now"] == PENDING  # on request
        Deliverer(store, config(endpoint(rx.url))).run_once()
        assert rx.ids() == [new, old]
    finally:
        rx.stop()


# -- crashes: a real deliverer process, killed and restarted -----------------------------------


def _write_config(root: Path, url: str) -> Path:
    path = root / "alerts.toml"
    path.write_text(
        f"[delivery]\npoll_seconds = 0.05\nidle_exit_seconds = 1\nbackoff_base_seconds = 0.2\n"
        f"backoff_max_seconds = 0.5\nmin_delay_seconds = 0.05\n"
        f'[[endpoint]]\nname = "hook"\nurl = "{url}"\nsecret = "{SECRET}"\nevents = ["*"]\n'
    )
    return path


def _deliverer(root: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "TULIP_ALERTS"}
    return subprocess.Popen(
        [sys.executable, "-m", "reports.alerts.delivery", "--root", str(root)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _wait_state(store, eid: str, state: str, timeout: float = 20) -> None:
    deadline = time.time() + timeout
    while delivery(store, eid).get("state") != state:
        if time.time() > deadline:
            raise AssertionError(f"delivery is {delivery(store, eid)}, not {state}")
        time.sleep(0.05)


def test_sender_killed_mid_request_resends_after_restart_and_never_after_the_ack(store):
    hold = threading.Event()
    rx = Receiver(plan=[Reply(200, hold=hold)]).start()
    try:
        _write_config(store.root, rx.url)
        eid = emit(store)
        p = _deliverer(store.root)
        assert rx.arrived.wait(20), "the deliverer never sent"
        p.send_signal(signal.SIGKILL)  # killed while the request is in flight, before any ack
        p.wait(10)
        hold.set()
        assert delivery(store, eid)["state"] == PENDING  # nothing recorded
        p2 = _deliverer(store.root)
        _wait_state(store, eid, DELIVERED)
        assert p2.wait(20) == 0  # exits once idle
        assert rx.ids() == [eid, eid] and rx.unique() == {eid}  # at-least-once; dedupe by id
        p3 = _deliverer(store.root)
        assert p3.wait(20) == 0
        assert len(rx.requests) == 2  # acknowledged: a restart sends nothing again
    finally:
        hold.set()
        rx.stop()


def test_sender_killed_while_the_receiver_is_down_delivers_exactly_once_after_restart(store):
    port = free_port()
    _write_config(store.root, f"http://127.0.0.1:{port}/hook")
    eid = emit(store)
    p = _deliverer(store.root)
    deadline = time.time() + 20
    while (delivery(store, eid).get("attempts") or 0) < 2 and time.time() < deadline:
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait(10)
    assert delivery(store, eid)["state"] == RETRYING
    rx = Receiver(port).start()
    try:
        p2 = _deliverer(store.root)
        _wait_state(store, eid, DELIVERED)
        p2.wait(20)
        assert rx.ids() == [eid]
    finally:
        rx.stop()


def test_one_deliverer_per_store(store):
    rx = Receiver().start()
    try:
        _write_config(store.root, rx.url)
        eid = emit(store)
        procs = [_deliverer(store.root) for _ in range(3)]
        codes = [p.wait(30) for p in procs]
        assert codes == [0, 0, 0]
        assert rx.ids() == [eid]
        errs = b"".join(p.stderr.read() for p in procs)
        assert errs.count(b"another deliverer already runs") >= 1
    finally:
        rx.stop()


def test_a_failed_job_event_from_the_engine_reaches_the_receiver_through_the_sink(
    store, monkeypatch
):
    from pipelines.runner import Runner
    from reports.alerts.delivery import event_sink

    rx = Receiver().start()
    try:
        _write_config(store.root, rx.url)
        store.create_repo("data")
        with store.start_commit("data") as w:
            w.put_bytes("/x.txt", b"x")
        store.create_pipeline(
            {
                "pipeline": {"name": "Broken"},
                "transform": {"cmd": ["bash"], "stdin": ["echo 'no model today' >&2; exit 3"]},
                "input": {"pfs": {"repo": "data", "glob": "/"}},
                "datumTries": 1,
            }
        )
        (job,) = Runner(store).run_until_idle()
        assert job.state == "failure"
        (event,) = list_events(store, event_type="job.*")
        event_sink(store.root)  # under TULIP_NO_AUTORUN the sink starts nothing
        time.sleep(0.5)
        assert rx.requests == []
        monkeypatch.delenv("TULIP_NO_AUTORUN")
        event_sink(store.root)  # what the engine calls through the tulip.event_sinks entry point
        rx.wait_for(1)
        body = verify(SECRET, rx.requests[0].headers, rx.requests[0].body)
        assert body["type"] == "dev.tulip.job.failed" and body["id"] == event["id"]
        assert body["data"]["pipeline"] == "Broken"
    finally:
        rx.stop()


def test_the_auditor_hook_event_links_to_its_audit_report(store):
    """The real `tulip.job_hooks` audit hook (auditor.events) emits audit.failed about the data
    commit; the webhook links to the audit's page and carries the hook's findings."""
    from importlib.metadata import entry_points

    from pipelines.runner import Runner

    if not any(
        ep.value.startswith("auditor.events") for ep in entry_points(group="tulip.job_hooks")
    ):
        pytest.skip("the auditor's job hook is not registered in this install")
    rx = Receiver().start()
    try:
        store.create_repo("flower_photos")
        with store.start_commit("flower_photos") as w:
            w.put_bytes("/orchids/1.jpg", b"x")
        data = store.resolve("flower_photos@master").id
        doc = {
            "schema": "tulip.audit/v1",
            "verdict": "fail",
            "data": {"repo": "flower_photos", "commit": "$C"},
            "reference": None,
            "summary": {"images": 1, "classes": {"orchids": 1}},
            "findings": [
                {
                    "check": "lookalike_class",
                    "severity": "fail",
                    "classes": ["orchids", "tulips"],
                    "score": 0.9,
                    "files": ["/orchids/1.jpg"],
                    "message": "orchids look like tulips",
                    "introduced_by": [{"repo": "flower_photos", "commit": "$C"}],
                }
            ],
        }
        script = json.dumps(doc).replace("$C", "'\"$flower_photos_COMMIT\"'")
        store.create_pipeline(
            {
                "pipeline": {"name": "Gatekeeper"},
                "transform": {"cmd": ["bash"], "stdin": [f"echo '{script}' > /pfs/out/audit.json"]},
                "input": {"pfs": {"repo": "flower_photos", "glob": "/"}},
            }
        )
        Runner(store).run_until_idle()
        (event,) = list_events(store, event_type="audit.*")
        assert event["subject"] == f"flower_photos@{data}"
        cfg = config(endpoint(rx.url), base_url="http://tulip.local:8080")
        Deliverer(store, cfg).run_once()
        body = verify(SECRET, rx.requests[0].headers, rx.requests[0].body)
        assert body["type"] == "dev.tulip.audit.failed"
        assert body["data"]["verdict"] == "fail"
        assert body["data"]["top_findings"][0]["check"] == "lookalike_class"
        assert body["data"]["blamed_commits"] == [{"repo": "flower_photos", "commit": data}]
        audit_commit = body["data"]["audit"]["commit"]
        assert (
            body["data"]["links"]["report"]
            == f"http://tulip.local:8080/audits/Gatekeeper/{audit_commit}"
        )
        assert (
            body["data"]["links"]["commit"]
            == f"http://tulip.local:8080/commits/flower_photos/{data}"
        )
    finally:
        rx.stop()
