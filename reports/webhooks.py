"""Durable alert delivery: the store's outbox, fanned out to webhook endpoints, until acknowledged.

Events are written to the ``outbox`` table in the same transaction as the result they report
(the engine does that). This module owns what happens next, in the ``deliveries`` and
``endpoints`` tables of the same database:

* **Fan-out.** Each event gets one ``deliveries`` row per endpoint whose ``events`` globs
  match it, the first time a deliverer sees it. An endpoint added later receives the events of
  the last ``give_up_after_seconds`` (a day), not the whole history.
* **Attempts.** A POST with a 15 s timeout, no redirects followed. 2xx acknowledges: the
  delivery is ``delivered`` and is never sent again. 410 Gone disables the endpoint (its
  deliveries wait until ``tulip alerts retry``). Anything else (429, 5xx, other 4xx, network
  errors) is retried: after ``Retry-After`` when the response has one (seconds or an HTTP
  date), else after exponential backoff with full jitter. Retries stop (``failed``) once the
  event is older than a day and the delivery has had ``min_attempts`` tries.
* **Crashes.** All state is in SQLite. A deliverer killed mid-request leaves the delivery
  pending, and the next deliverer sends it again with the same ``webhook-id``: delivery is
  at-least-once, so receivers deduplicate by ``webhook-id``. Once a 2xx is recorded, the
  event is never resent to that endpoint.
* **One deliverer per store**, holding ``alerts.lock``. The engine's ``tulip.event_sinks``
  entry point (``event_sink``) starts one in the background (``python -m reports.webhooks
  --root R``) when a job emits events; it stays while deliveries are pending and exits when
  idle.
"""

from __future__ import annotations

import argparse
import contextlib
import email.utils
import fcntl
import json
import logging
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.errors import TulipError
from pipelines.info import iso

from .alert_config import AlertConfig, Endpoint, load_config
from .alert_messages import Event, body_for, sign

log = logging.getLogger("tulip.alerts")

LOCK_NAME = "alerts.lock"
LOG_NAME = "alerts.log"
USER_AGENT = "tulip-webhooks/1"

PENDING = "pending"
RETRYING = "retrying"
DELIVERED = "delivered"
FAILED = "failed"
DISABLED = "disabled"  # the endpoint answered 410 Gone
STATES = (PENDING, RETRYING, DELIVERED, FAILED, DISABLED)


class AlertsUnavailable(TulipError):
    """Alert delivery needs the embedded store (its outbox lives in the store's database)."""


class EventNotFound(TulipError):
    pass


class DelivererRunning(TulipError):
    """Another process holds the store's deliverer lock (it delivers what is pending)."""


@dataclass(frozen=True)
class Outcome:
    """What one HTTP attempt came to."""

    status: int | None
    error: str | None = None
    retry_after: float | None = None  # seconds, from the Retry-After header

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def gone(self) -> bool:
        return self.status == 410


@dataclass
class RunStats:
    fanned_out: int = 0
    attempted: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    disabled: int = 0
    details: list[dict] = field(default_factory=list)


# -- the lock -------------------------------------------------------------------------------


@contextlib.contextmanager
def deliverer_lock(root: Path) -> Iterator[bool]:
    """Hold the store's deliverer lock; yields False if another process holds it."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK_NAME, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def deliverer_running(root: Path) -> bool:
    with deliverer_lock(Path(root)) as got:
        return not got


# -- HTTP -------------------------------------------------------------------------------------


def retry_after_seconds(value: str | None, *, now: float) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None if unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now)


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float) -> Outcome:
    import requests

    try:
        with requests.post(
            url,
            data=body,
            headers=headers,
            timeout=timeout,
            allow_redirects=False,
            stream=True,
        ) as r:
            return Outcome(
                r.status_code,
                None,
                retry_after_seconds(r.headers.get("Retry-After"), now=time.time()),
            )
    except requests.RequestException as e:
        return Outcome(None, f"{type(e).__name__}: {e}"[:500])


# -- the deliverer ----------------------------------------------------------------------------


def _store_of(backend):
    from pipelines.store import EmbeddedStore

    if not isinstance(backend, EmbeddedStore):
        raise AlertsUnavailable(
            f"alerts are delivered from the embedded store's outbox; the {backend.name} backend "
            "has none"
        )
    return backend


def _event(row) -> Event:
    return Event(
        row["id"], row["type"], row["subject"], row["time"], json.loads(row["data"]), row["seq"]
    )


class Deliverer:
    """Fans the outbox out to the configured endpoints and sends what is due."""

    def __init__(
        self,
        store,
        config: AlertConfig,
        *,
        clock: Callable[[], float] = time.time,
        send: Callable[..., Outcome] = post,
        rng: Callable[[], float] = random.random,
    ):
        self.store = _store_of(store)
        self.config = config
        self.clock = clock
        self.send = send
        self.rng = rng
        self._lock = threading.Lock()

    # -- bookkeeping ----------------------------------------------------------------------
    def sync_endpoints(self) -> None:
        """Record configured endpoints; a changed URL lifts an earlier 410 disablement."""
        with self.store.transaction() as conn:
            for e in self.config.endpoints:
                row = conn.execute("SELECT url FROM endpoints WHERE name = ?", (e.name,)).fetchone()
                if row is None:
                    conn.execute("INSERT INTO endpoints(name, url) VALUES (?, ?)", (e.name, e.url))
                elif row["url"] != e.url:
                    conn.execute(
                        "UPDATE endpoints SET url = ?, disabled = NULL, reason = NULL WHERE name = ?",
                        (e.url, e.name),
                    )

    def fan_out(self) -> int:
        """Create the missing deliveries of recent events; returns how many."""
        if not self.config.endpoints:
            return 0
        horizon = self.clock() - self.config.delivery.give_up_after_seconds
        created = 0
        with self.store.transaction() as conn:
            for e in self.config.endpoints:
                rows = conn.execute(
                    "SELECT o.id, o.type FROM outbox o WHERE o.time >= ? AND NOT EXISTS "
                    "(SELECT 1 FROM deliveries d WHERE d.event_id = o.id AND d.endpoint = ?) "
                    "ORDER BY o.seq",
                    (horizon, e.name),
                ).fetchall()
                for row in rows:
                    if e.wants(row["type"]):
                        conn.execute(
                            "INSERT OR IGNORE INTO deliveries(event_id, endpoint, state, attempts, next_attempt) "
                            "VALUES (?, ?, ?, 0, ?)",
                            (row["id"], e.name, PENDING, self.clock()),
                        )
                        created += 1
        return created

    def due(self) -> dict[str, list[Event]]:
        """Due deliveries by endpoint, oldest event first, skipping disabled endpoints."""
        names = [e.name for e in self.config.endpoints]
        if not names:
            return {}
        marks = ",".join("?" * len(names))
        rows = self.store.db.execute(
            f"SELECT o.*, d.endpoint FROM deliveries d JOIN outbox o ON o.id = d.event_id "
            f"JOIN endpoints e ON e.name = d.endpoint "
            f"WHERE d.state IN (?, ?) AND d.next_attempt <= ? AND e.disabled IS NULL "
            f"AND d.endpoint IN ({marks}) ORDER BY o.seq",
            (PENDING, RETRYING, self.clock(), *names),
        ).fetchall()
        out: dict[str, list[Event]] = {}
        for r in rows:
            out.setdefault(r["endpoint"], []).append(_event(r))
        return out

    def next_due(self) -> float | None:
        row = self.store.db.execute(
            "SELECT MIN(d.next_attempt) FROM deliveries d JOIN endpoints e ON e.name = d.endpoint "
            "WHERE d.state IN (?, ?) AND e.disabled IS NULL",
            (PENDING, RETRYING),
        ).fetchone()
        return row[0] if row and row[0] is not None else None

    def backoff(self, attempts: int) -> float:
        d = self.config.delivery
        ceiling = min(d.backoff_max_seconds, d.backoff_base_seconds * 2 ** max(0, attempts - 1))
        return max(d.min_delay_seconds, self.rng() * ceiling)

    # -- one attempt ----------------------------------------------------------------------
    def attempt(self, endpoint: Endpoint, event: Event) -> Outcome:
        event = enrich(self.store, event, self.config)
        body = body_for(event, endpoint, self.config, root=str(self.store.root))
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        if endpoint.format == "cloudevents":
            headers["Content-Type"] = "application/cloudevents+json; charset=utf-8"
        if endpoint.secret:
            headers.update(sign(endpoint.secret, event.id, int(self.clock()), body))
        else:
            headers["webhook-id"] = event.id
        return self.send(endpoint.url, body, headers, timeout=self.config.delivery.timeout_seconds)

    def record(self, endpoint: Endpoint, event: Event, outcome: Outcome, stats: RunStats) -> str:
        now = self.clock()
        d = self.config.delivery
        with self.store.transaction() as conn:
            row = conn.execute(
                "SELECT state, attempts FROM deliveries WHERE event_id = ? AND endpoint = ?",
                (event.id, endpoint.name),
            ).fetchone()
            if row is None or row["state"] in (DELIVERED, FAILED, DISABLED):
                return row["state"] if row else "gone"
            attempts = row["attempts"] + 1
            error = outcome.error or (None if outcome.acknowledged else f"HTTP {outcome.status}")
            if outcome.acknowledged:
                state, next_attempt = DELIVERED, None
                conn.execute(
                    "UPDATE deliveries SET state = ?, attempts = ?, next_attempt = NULL, last_status = ?, "
                    "last_error = NULL, delivered = ? WHERE event_id = ? AND endpoint = ?",
                    (state, attempts, outcome.status, now, event.id, endpoint.name),
                )
            elif outcome.gone:
                state, next_attempt = DISABLED, None
                conn.execute(
                    "UPDATE endpoints SET disabled = ?, reason = ? WHERE name = ?",
                    (now, f"{endpoint.url} answered 410 Gone", endpoint.name),
                )
            else:
                delay = (
                    min(outcome.retry_after, d.max_retry_after_seconds)
                    if outcome.retry_after is not None
                    else self.backoff(attempts)
                )
                next_attempt = now + max(
                    delay, d.min_delay_seconds if outcome.retry_after is None else 0
                )
                expired = (
                    next_attempt - event.time > d.give_up_after_seconds
                    and attempts >= d.min_attempts
                )
                state = FAILED if expired else RETRYING
                if expired:
                    next_attempt = None
            if not outcome.acknowledged:
                conn.execute(
                    "UPDATE deliveries SET state = ?, attempts = ?, next_attempt = ?, last_status = ?, "
                    "last_error = ? WHERE event_id = ? AND endpoint = ?",
                    (state, attempts, next_attempt, outcome.status, error, event.id, endpoint.name),
                )
        with self._lock:
            stats.attempted += 1
            setattr(stats, state, getattr(stats, state) + 1)
            stats.details.append(
                {"event": event.id, "endpoint": endpoint.name, "state": state,
                 "status": outcome.status, "error": outcome.error}
            )  # fmt: skip
        log.info(
            "%s -> %s: %s (%s)", event.id, endpoint.name, state, outcome.status or outcome.error
        )
        return state

    def _deliver_endpoint(self, endpoint: Endpoint, events: list[Event], stats: RunStats) -> None:
        try:
            for event in events:
                state = self.record(endpoint, event, self.attempt(endpoint, event), stats)
                if state == DISABLED:
                    break
        finally:
            self.store.close()  # this thread's connection

    def run_once(self) -> RunStats:
        """Fan out, then send every due delivery (endpoints in parallel, events in order)."""
        stats = RunStats()
        self.sync_endpoints()
        stats.fanned_out = self.fan_out()
        due = self.due()
        if not due:
            return stats
        endpoints = {e.name: e for e in self.config.endpoints}
        with ThreadPoolExecutor(max_workers=min(8, len(due))) as pool:
            futures = [
                pool.submit(self._deliver_endpoint, endpoints[name], events, stats)
                for name, events in due.items()
            ]
            for f in futures:
                f.result()
        return stats

    def run(self, *, idle_exit: float | None = None, stop: threading.Event | None = None) -> None:
        """Deliver until nothing has been pending for ``idle_exit`` seconds (None: forever)."""
        stop = stop or threading.Event()
        d = self.config.delivery
        idle_since = self.clock()
        while not stop.is_set():
            stats = self.run_once()
            nxt = self.next_due()
            now = self.clock()
            if nxt is not None or stats.attempted:
                idle_since = now
            elif idle_exit is not None and now - idle_since >= idle_exit:
                return
            wait = d.poll_seconds if nxt is None else min(d.poll_seconds, max(0.0, nxt - now))
            stop.wait(max(0.01, wait))


# -- what the event means -------------------------------------------------------------------


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


def enrich(store, event: Event, config: AlertConfig) -> Event:
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
            audit_doc = json.loads(store.get_file(where[0], where[1], "/audit.json"))
        except (TulipError, ValueError):
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


def list_events(backend, *, limit: int = 50, event_type: str | None = None) -> list[dict]:
    """Events newest first, each with its delivery state per endpoint."""
    store = _store_of(backend)
    db = store.db
    q = "SELECT * FROM outbox"
    args: list = []
    if event_type:
        q += " WHERE type GLOB ?"
        args.append(event_type)
    q += " ORDER BY seq DESC LIMIT ?"
    args.append(limit)
    events = [_event(r) for r in db.execute(q, args).fetchall()]
    disabled = {
        r["name"]: r["reason"]
        for r in db.execute("SELECT * FROM endpoints WHERE disabled IS NOT NULL")
    }
    out = []
    for e in events:
        deliveries = []
        for d in db.execute(
            "SELECT * FROM deliveries WHERE event_id = ? ORDER BY endpoint", (e.id,)
        ).fetchall():
            deliveries.append(
                {
                    "endpoint": d["endpoint"],
                    "state": d["state"],
                    "attempts": d["attempts"],
                    "next_attempt": iso(d["next_attempt"]),
                    "last_status": d["last_status"],
                    "last_error": d["last_error"],
                    "delivered": iso(d["delivered"]),
                    "endpoint_disabled": disabled.get(d["endpoint"]),
                }
            )
        out.append({**e.as_dict(), "deliveries": deliveries})
    return out


def list_endpoints(backend, config: AlertConfig) -> list[dict]:
    store = _store_of(backend)
    rows = {r["name"]: r for r in store.db.execute("SELECT * FROM endpoints").fetchall()}
    out = []
    for e in config.endpoints:
        r = rows.get(e.name)
        out.append({"name": e.name, "url": e.url, "format": e.format, "events": list(e.events),
                    "signed": e.secret is not None,
                    "disabled": iso(r["disabled"]) if r is not None and r["disabled"] else None,
                    "reason": r["reason"] if r is not None else None})  # fmt: skip
    return out


def find_event(backend, event_id: str) -> Event:
    store = _store_of(backend)
    rows = store.db.execute(
        "SELECT * FROM outbox WHERE id = ? OR id LIKE ? LIMIT 2", (event_id, event_id + "%")
    ).fetchall()
    exact = [r for r in rows if r["id"] == event_id]
    if exact:
        return _event(exact[0])
    if not rows or len(event_id) < 4:
        raise EventNotFound(f"no event {event_id!r} in the outbox; `tulip alerts list` shows them")
    if len(rows) > 1:
        raise EventNotFound(f"event ID prefix {event_id!r} is ambiguous; give more characters")
    return _event(rows[0])


def retry(
    backend,
    event_id: str,
    config: AlertConfig,
    *,
    endpoint: str | None = None,
    now: float | None = None,
) -> list[dict]:
    """Re-arm an event's undelivered deliveries (re-enabling endpoints disabled by a 410), and
    create the missing ones for matching endpoints. Delivered ones are left alone: an
    acknowledged event is never sent twice. Returns what changed, per endpoint."""
    store = _store_of(backend)
    event = find_event(store, event_id)
    now = time.time() if now is None else now
    if endpoint is not None and config.endpoint(endpoint) is None:
        known = ", ".join(e.name for e in config.endpoints) or "none configured"
        raise TulipError(f"no endpoint {endpoint!r} in {config.path}; endpoints: {known}")
    Deliverer(store, config).sync_endpoints()
    changes = []
    with store.transaction() as conn:
        for e in config.endpoints:
            if endpoint is not None and e.name != endpoint:
                continue
            row = conn.execute(
                "SELECT state FROM deliveries WHERE event_id = ? AND endpoint = ?",
                (event.id, e.name),
            ).fetchone()
            if row is None:
                if not e.wants(event.type) and endpoint is None:
                    continue
                conn.execute(
                    "INSERT INTO deliveries(event_id, endpoint, state, attempts, next_attempt) VALUES (?,?,?,0,?)",
                    (event.id, e.name, PENDING, now),
                )
                changes.append({"endpoint": e.name, "was": None, "now": PENDING})
                continue
            if row["state"] == DELIVERED:
                changes.append({"endpoint": e.name, "was": DELIVERED, "now": DELIVERED})
                continue
            conn.execute(
                "UPDATE deliveries SET state = ?, attempts = 0, next_attempt = ? WHERE event_id = ? AND endpoint = ?",
                (PENDING, now, event.id, e.name),
            )
            conn.execute(
                "UPDATE endpoints SET disabled = NULL, reason = NULL WHERE name = ?", (e.name,)
            )
            changes.append({"endpoint": e.name, "was": row["state"], "now": PENDING})
    return changes


def emit_test_event(backend, *, subject: str = "tulip@test") -> str:
    """Put an ``alert.test`` event in the outbox (what `tulip alerts test` sends)."""
    store = _store_of(backend)
    with store.transaction() as conn:
        return store.emit_event(
            conn, "alert.test", subject, {"message": "a test alert from tulip alerts test"}
        )


# -- starting a deliverer ---------------------------------------------------------------------


def spawn_deliverer(root: Path, *, config_override: Path | str | None = None) -> bool:
    """Start a detached deliverer unless one runs; True if one was started."""
    root = Path(root)
    if deliverer_running(root):
        return False
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "reports.webhooks", "--root", str(root)]
    if config_override:
        cmd += ["--alerts-config", str(config_override)]
    with open(logs / LOG_NAME, "ab") as out:
        subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    return True


def event_sink(root: Path | str) -> None:
    """The ``tulip.event_sinks`` entry point: called by the engine after a job emitted events.

    Starts a background deliverer when endpoints are configured, unless
    ``$TULIP_NO_AUTORUN`` is set (tests and scripts that run everything in the foreground)."""
    if os.environ.get("TULIP_NO_AUTORUN"):
        return
    root = Path(root)
    try:
        config = load_config(root)
    except TulipError:
        log.exception("alerts config unreadable; events stay in the outbox")
        return
    if config.endpoints:
        spawn_deliverer(root)


def serve(
    root: Path, config: AlertConfig, *, once: bool = False, idle_exit: float | None = None
) -> RunStats | None:
    """Run a deliverer in this process, holding the lock; raises if another one runs."""
    from pipelines.store import EmbeddedStore

    with deliverer_lock(root) as got:
        if not got:
            raise DelivererRunning(
                f"another deliverer already runs for {root} (it holds {root / LOCK_NAME}); "
                "it will deliver the pending events"
            )
        store = EmbeddedStore(root, create=False)
        try:
            d = Deliverer(store, config)
            if once:
                return d.run_once()
            d.run(idle_exit=idle_exit)
            return None
        finally:
            store.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m reports.webhooks", description=__doc__.split("\n")[0]
    )
    p.add_argument("--root", type=Path, required=True, help="store directory")
    p.add_argument(
        "--alerts-config",
        default=None,
        help="alerts config (default $TULIP_ALERTS, else ROOT/alerts.toml)",
    )
    p.add_argument("--once", action="store_true", help="send what is due, then exit")
    p.add_argument("--forever", action="store_true", help="do not exit when idle")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        config = load_config(args.root, args.alerts_config)
        if not config.endpoints:
            print(
                f"reports.webhooks: no endpoints in {config.path}; nothing to deliver",
                file=sys.stderr,
            )
            return 0
        idle = None if args.forever else config.delivery.idle_exit_seconds
        serve(args.root.absolute(), config, once=args.once, idle_exit=idle)
    except DelivererRunning as e:
        print(f"reports.webhooks: {e}", file=sys.stderr)
        return 0
    except TulipError as e:
        print(f"reports.webhooks: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
