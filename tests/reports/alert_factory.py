"""Factories for the alert tests: a store holding one failed audit, events about it, and the
delivery state the deliverer recorded (read through the alerts' own tables)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

from reports.alerts.config import parse_config

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

FAILED_AUDIT = {
    "schema": "tulip.audit/v1",
    "verdict": "fail",
    "data": {"repo": "flower_photos", "commit": "d" * 32},
    "reference": None,
    "summary": {"images": 10, "classes": {"orchids": 5, "tulips": 5}},
    "findings": [
        {"check": "label_issue", "severity": "warn", "classes": ["tulips", "orchids"], "score": 0.5,
         "files": ["/tulips/1.jpg"], "introduced_by": [{"repo": "flower_photos", "commit": "a" * 32}],
         "message": "looks like orchids"},
        {"check": "class_overlap", "severity": "fail", "classes": ["orchids", "tulips"], "score": 0.97,
         "files": ["/orchids/1.jpg"], "introduced_by": [{"repo": "flower_photos", "commit": "b" * 32}],
         "message": "orchids <b>are</b> tulips"},
    ],
}  # fmt: skip


class Clock:
    def __init__(self, t: float | None = None):
        self.t = time.time() if t is None else t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def config(*endpoints: dict, base_url: str | None = None, **delivery):
    data: dict = {"endpoint": list(endpoints), "delivery": delivery}
    if base_url:
        data["base_url"] = base_url
    return parse_config(data)


def endpoint(url: str, name: str = "hook", **kw) -> dict:
    return {"name": name, "url": url, "secret": SECRET, "events": ["audit.*", "job.failed"], **kw}


def audited_store(root: Path):
    """A store whose Audit repo holds one failed audit; ``store.audit_commit`` names it."""
    from pipelines.embedded.store import EmbeddedStore

    s = EmbeddedStore(root)
    s.create_repo("Audit")
    with s.start_commit("Audit") as w:
        w.put_bytes("/audit.json", json.dumps(FAILED_AUDIT).encode())
    s.audit_commit = s.resolve("Audit@master").id
    return s


def emit(store, type_="audit.failed", subject=None, data=None, *, age: float = 0) -> str:
    """An event in the outbox, ``age`` seconds old."""
    return store.outbox.emit_now(
        type_, subject or f"Audit@{store.audit_commit}", data or {}, at=time.time() - age
    )


def delivery(store, event_id: str, name: str = "hook") -> dict:
    """The recorded delivery of an event to an endpoint, or {} when there is none."""
    from reports.alerts.tables import AlertTables

    d = AlertTables(store.db).get(store.db.conn, event_id, name)
    return asdict(d) if d else {}


def endpoint_state(store, name: str = "hook"):
    from reports.alerts.tables import AlertTables

    return AlertTables(store.db).endpoints()[name]
