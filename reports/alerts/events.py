"""The outbox as alerts see it: events with their delivery state, re-arming one, test events,
and what an event means (the audit behind it, links to the report).

Reads events through :class:`pipelines.embedded.outbox.Outbox`; writes delivery state only
through :class:`reports.alerts.tables.AlertTables`.
"""

from __future__ import annotations

import time

from pipelines.backend import Backend
from pipelines.embedded.outbox import Event, Outbox
from pipelines.embedded.store import EmbeddedStore
from pipelines.errors import TulipError
from pipelines.info import iso
from pipelines.layout import AUDIT_FILE, read_json

from .config import AlertConfig
from .tables import DELIVERED, PENDING, AlertTables


class AlertsUnavailable(TulipError):
    """Alert delivery needs the embedded store (its outbox lives in the store's database)."""


class EventNotFound(TulipError):
    pass


def alert_store(backend: Backend) -> tuple[EmbeddedStore, Outbox, AlertTables]:
    """The embedded store behind a backend, its outbox and its alert tables."""
    if not isinstance(backend, EmbeddedStore):
        raise AlertsUnavailable(
            f"alerts are delivered from the embedded store's outbox; the {backend.name} backend "
            "has none"
        )
    return backend, backend.outbox, AlertTables(backend.db)


def _audit_location(event: Event) -> tuple[str, str] | None:
    """Where the audit behind an event is: ``data.audit`` (what auditor.events writes, whose
    subject is the data commit), else the subject itself for audit events."""
    audit = event.data.get("audit")
    if (
        isinstance(audit, dict)
        and isinstance(audit.get("repo"), str)
        and isinstance(audit.get("commit"), str)
    ):
        return audit["repo"], audit["commit"]
    repo, _, commit = event.subject.partition("@")
    if event.type.startswith("audit.") and commit:
        return repo, commit
    return None


def enrich(backend: Backend, event: Event, config: AlertConfig) -> Event:
    """Fill in what the emitter left out: the verdict, top findings and blamed commits from the
    audit document, and (when ``base_url`` is set) links to the report and the commit."""
    data = dict(event.data)
    where = _audit_location(event)
    audit_doc = None
    wanted = ("verdict", "top_findings")
    if where and (
        any(k not in data for k in wanted) or not ("blamed" in data or "blamed_commits" in data)
    ):
        try:
            audit_doc = read_json(backend, where[0], where[1], AUDIT_FILE)
        except TulipError:  # a missing commit, or MalformedDocument
            audit_doc = None
    if isinstance(audit_doc, dict):
        findings = [f for f in audit_doc.get("findings") or [] if isinstance(f, dict)]
        rank = {"fail": 0, "warn": 1, "info": 2}
        findings.sort(key=lambda f: (rank.get(f.get("severity"), 3), -(f.get("score") or 0)))
        data.setdefault("verdict", audit_doc.get("verdict"))
        data.setdefault("data", audit_doc.get("data"))
        data.setdefault(
            "top_findings",
            [
                {k: f.get(k) for k in ("check", "severity", "classes", "score", "message")}
                for f in findings[:5]
            ],
        )
        if "blamed" not in data and "blamed_commits" not in data:
            seen: list[dict] = []
            for f in findings:
                for b in f.get("introduced_by") or []:
                    entry = (
                        {"repo": b.get("repo"), "commit": b.get("commit")}
                        if isinstance(b, dict)
                        else None
                    )
                    if entry and entry not in seen:
                        seen.append(entry)
            data["blamed_commits"] = seen[:20]
    repo, _, commit = event.subject.partition("@")
    if config.base_url:
        links = dict(data.get("links") or {})
        if commit:
            links.setdefault("commit", f"{config.base_url}/commits/{repo}/{commit}")
        if where:
            links.setdefault("report", f"{config.base_url}/audits/{where[0]}/{where[1]}")
        data["links"] = links
    return Event(event.id, event.type, event.subject, event.time, data, event.seq)


# -- reading and re-arming, for `tulip alerts` and the alerts page ----------------------------


def list_events(backend: Backend, *, limit: int = 50, event_type: str | None = None) -> list[dict]:
    """Events newest first, each with its delivery state per endpoint."""
    _store, outbox, tables = alert_store(backend)
    endpoints = tables.endpoints()
    out = []
    for e in outbox.newest(limit=limit, type_glob=event_type):
        deliveries = []
        for d in tables.of_event(e.id):
            state = endpoints.get(d.endpoint)
            deliveries.append(
                {
                    "endpoint": d.endpoint,
                    "state": d.state,
                    "attempts": d.attempts,
                    "next_attempt": iso(d.next_attempt),
                    "last_status": d.last_status,
                    "last_error": d.last_error,
                    "delivered": iso(d.delivered),
                    "endpoint_disabled": state.reason if state and state.disabled else None,
                }
            )
        out.append({**e.as_dict(), "deliveries": deliveries})
    return out


def list_endpoints(backend: Backend, config: AlertConfig) -> list[dict]:
    _store, _outbox, tables = alert_store(backend)
    rows = tables.endpoints()
    out = []
    for e in config.endpoints:
        r = rows.get(e.name)
        out.append({"name": e.name, "url": e.url, "format": e.format, "events": list(e.events),
                    "signed": e.secret is not None,
                    "disabled": iso(r.disabled) if r is not None and r.disabled else None,
                    "reason": r.reason if r is not None else None})  # fmt: skip
    return out


def find_event(backend: Backend, event_id: str) -> Event:
    _store, outbox, _tables = alert_store(backend)
    found = outbox.matching(event_id)
    exact = [e for e in found if e.id == event_id]
    if exact:
        return exact[0]
    if not found or len(event_id) < 4:
        raise EventNotFound(f"no event {event_id!r} in the outbox; `tulip alerts list` shows them")
    if len(found) > 1:
        raise EventNotFound(f"event ID prefix {event_id!r} is ambiguous; give more characters")
    return found[0]


def retry(
    backend: Backend,
    event_id: str,
    config: AlertConfig,
    *,
    endpoint: str | None = None,
    now: float | None = None,
) -> list[dict]:
    """Re-arm an event's undelivered deliveries (re-enabling endpoints disabled by a 410), and
    create the missing ones for matching endpoints. Delivered ones are left alone: an
    acknowledged event is never sent twice. Returns what changed, per endpoint."""
    store, _outbox, tables = alert_store(backend)
    event = find_event(store, event_id)
    now = time.time() if now is None else now
    if endpoint is not None and config.endpoint(endpoint) is None:
        known = ", ".join(e.name for e in config.endpoints) or "none configured"
        raise TulipError(f"no endpoint {endpoint!r} in {config.path}; endpoints: {known}")
    tables.sync_endpoints(((e.name, e.url) for e in config.endpoints), now=config.added(now))
    changes = []
    with store.db.transaction() as conn:
        for e in config.endpoints:
            if endpoint is not None and e.name != endpoint:
                continue
            current = tables.get(conn, event.id, e.name)
            if current is None:
                if not e.wants(event.type) and endpoint is None:
                    continue
                tables.create(conn, event.id, e.name, now)
                changes.append({"endpoint": e.name, "was": None, "now": PENDING})
                continue
            if current.state == DELIVERED:
                changes.append({"endpoint": e.name, "was": DELIVERED, "now": DELIVERED})
                continue
            tables.rearm(conn, event.id, e.name, now)
            tables.enable(conn, e.name)
            changes.append({"endpoint": e.name, "was": current.state, "now": PENDING})
    return changes


def emit_test_event(backend: Backend, *, subject: str = "tulip@test") -> str:
    """Put an ``alert.test`` event in the outbox (what `tulip alerts test` sends)."""
    _store, outbox, _tables = alert_store(backend)
    return outbox.emit_now(
        "alert.test", subject, {"message": "a test alert from tulip alerts test"}
    )
