"""A new webhook endpoint starts from when it was added, unless replayed; `tulip alerts test`
sends only its own event. (Before: a new endpoint got the last day's events, and the test
ping delivered old audit.failed events along with it.)"""

from __future__ import annotations

import json
import os
import time

from reports.alerts.config import load_config, parse_since
from reports.alerts.delivery import Deliverer, Outcome
from reports.alerts.events import emit_test_event
from reports.alerts.tables import AlertTables
from tests.reports.alert_factory import SECRET, audited_store, emit


def write_config(root, *names):
    text = "".join(
        f'[[endpoint]]\nname = "{n}"\nurl = "http://127.0.0.1:9/{n}"\nsecret = "{SECRET}"\n'
        'events = ["audit.*"]\n'
        for n in names
    )
    (root / "alerts.toml").write_text(text)
    return load_config(root)


class Sent(list):
    def __call__(self, url, body, headers, *, timeout):
        self.append((url.rsplit("/", 1)[1], json.loads(body)["type"]))
        return Outcome(200)


def test_a_new_endpoint_starts_from_when_it_was_added(tmp_path, monkeypatch):
    monkeypatch.setenv("TULIP_NO_AUTORUN", "1")
    s = audited_store(tmp_path / "store")
    old = emit(s)  # an audit.failed from before the endpoint existed
    cfg = write_config(s.root, "first")
    later = time.time() + 5
    os.utime(s.root / "alerts.toml", (later, later))  # the endpoint is added after `old`
    sent = Sent()
    Deliverer(s, cfg, send=sent).run_once()
    assert sent == []
    new = s.outbox.emit_now("audit.failed", "flower_photos@x", {}, at=later + 1)
    Deliverer(s, cfg, send=sent, clock=lambda: later + 2).run_once()
    assert sent == [("first", "dev.tulip.audit.failed")]
    # --replay SINCE reaches back, and sends nothing twice
    since = parse_since("1d", now=time.time())
    Deliverer(s, cfg, send=sent, clock=lambda: later + 3).run_once(replay_since=since)
    Deliverer(s, cfg, send=sent, clock=lambda: later + 4).run_once(replay_since=since)
    assert sent == [("first", "dev.tulip.audit.failed")] * 2
    tables = AlertTables(s.db)
    assert [(d.endpoint, d.state) for d in tables.of_event(old)] == [("first", "delivered")]
    assert [(d.endpoint, d.state) for d in tables.of_event(new)] == [("first", "delivered")]
    s.close()


def test_alerts_test_sends_only_its_event(tmp_path, monkeypatch):
    monkeypatch.setenv("TULIP_NO_AUTORUN", "1")
    s = audited_store(tmp_path / "store")
    cfg = write_config(s.root, "hook")
    emit(s)  # a pending audit.failed the endpoint wants
    eid = emit_test_event(s)
    from reports.alerts.events import retry

    retry(s, eid, cfg, endpoint="hook")
    sent = Sent()
    stats = Deliverer(s, cfg, send=sent).run_once(only={eid})
    assert sent == [("hook", "dev.tulip.alert.test")] and stats.delivered == 1
    s.close()


def test_since_parses_spans_and_times():
    assert parse_since("2h", now=10_000.0) == 10_000.0 - 7200
    assert parse_since("2026-12-01T00:00:00Z", now=0) == 1796083200.0
