"""Durable alert delivery: the store's outbox, fanned out to webhook endpoints, until acknowledged.

Events are written to the outbox in the same transaction as the result they report (the
engine does that, ``pipelines.embedded.outbox``). This module decides what happens next, and
records it in the alerts' own ``deliveries`` and ``endpoints`` tables (``tables.py``):

* **Fan-out.** Each event gets one ``deliveries`` row per endpoint whose ``events`` globs
  match it, the first time a deliverer sees it. A new endpoint starts from when it was added
  (when the alerts config that names it was last written, as the store first sees it): it
  gets no older event, unless ``tulip alerts deliver --replay SINCE``. Nothing older than
  ``give_up_after_seconds`` (a day) is fanned out without ``--replay``.
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
  entry point (``event_sink``) starts one in the background (``python -m
  reports.alerts.delivery --root R``) when a job emits events; it stays while deliveries are pending and exits when
  idle.
"""

from __future__ import annotations

import argparse
import contextlib
import email.utils
import fcntl
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

from pipelines.backend import Backend
from pipelines.embedded.outbox import Event
from pipelines.embedded.store import EmbeddedStore
from pipelines.errors import TulipError

from .config import AlertConfig, Endpoint, load_config
from .events import alert_store, enrich
from .messages import body_for, sign
from .tables import DELIVERED, DISABLED, FAILED, PENDING, RETRYING, STATES

log = logging.getLogger("tulip.alerts")

LOCK_NAME = "alerts.lock"
LOG_NAME = "alerts.log"
USER_AGENT = "tulip-webhooks/1"

__all__ = ["DELIVERED", "DISABLED", "FAILED", "PENDING", "RETRYING", "STATES"]


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


class Deliverer:
    """Fans the outbox out to the configured endpoints and sends what is due."""

    def __init__(
        self,
        store: Backend,
        config: AlertConfig,
        *,
        clock: Callable[[], float] = time.time,
        send: Callable[..., Outcome] = post,
        rng: Callable[[], float] = random.random,
    ):
        self.store, self.outbox, self.tables = alert_store(store)
        self.config = config
        self.clock = clock
        self.send = send
        self.rng = rng
        self._lock = threading.Lock()

    # -- bookkeeping ----------------------------------------------------------------------
    def sync_endpoints(self) -> None:
        """Record configured endpoints (a new one starts from now); a changed URL lifts an
        earlier 410 disablement."""
        self.tables.sync_endpoints(
            ((e.name, e.url) for e in self.config.endpoints), now=self.config.added(self.clock())
        )

    def fan_out(self, *, replay_since: float | None = None) -> int:
        """Create the missing deliveries of recent events; returns how many.

        An endpoint gets the events from when it was added (``endpoints.since``), at most a
        day back; ``replay_since`` (``--replay SINCE``) reaches back to then instead, for
        every endpoint, without sending anything twice (an existing delivery stays)."""
        if not self.config.endpoints:
            return 0
        now = self.clock()
        horizon = now - self.config.delivery.give_up_after_seconds
        added = {name: st.since for name, st in self.tables.endpoints().items()}
        created = 0
        with self.store.db.transaction() as conn:
            events = self.outbox.since(min(horizon, replay_since if replay_since else horizon))
            have = self.tables.existing(conn, [e.id for e in events])
            for endpoint in self.config.endpoints:
                start = replay_since if replay_since is not None else added.get(endpoint.name)
                for event in events:
                    if (event.id, endpoint.name) in have or not endpoint.wants(event.type):
                        continue
                    if start is not None and event.time < start:
                        continue
                    if replay_since is None and event.time < horizon:
                        continue
                    created += self.tables.create(conn, event.id, endpoint.name, now)
        return created

    def due(self, *, only: set[str] | None = None) -> dict[str, list[Event]]:
        """Due deliveries by endpoint, oldest event first, skipping disabled endpoints;
        ``only``: just these events."""
        pairs = self.tables.due(self.clock(), [e.name for e in self.config.endpoints])
        if only is not None:
            pairs = [p for p in pairs if p[0] in only]
        events = self.outbox.get(sorted({event_id for event_id, _ in pairs}))
        out: dict[str, list[Event]] = {}
        for event_id, endpoint in sorted(pairs, key=lambda p: events[p[0]].seq):
            out.setdefault(endpoint, []).append(events[event_id])
        return out

    def next_due(self) -> float | None:
        return self.tables.next_due()

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
        with self.store.db.transaction() as conn:
            current = self.tables.get(conn, event.id, endpoint.name)
            if current is None or current.state in (DELIVERED, FAILED, DISABLED):
                return current.state if current else "gone"
            attempts = current.attempts + 1
            error = outcome.error or (None if outcome.acknowledged else f"HTTP {outcome.status}")
            if outcome.acknowledged:
                state = DELIVERED
                self.tables.delivered(conn, event.id, endpoint.name, attempts, outcome.status, now)
            else:
                if outcome.gone:
                    state, next_attempt = DISABLED, None
                    self.tables.disable(
                        conn, endpoint.name, now, f"{endpoint.url} answered 410 Gone"
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
                self.tables.attempted(
                    conn,
                    event.id,
                    endpoint.name,
                    state=state,
                    attempts=attempts,
                    next_attempt=next_attempt,
                    status=outcome.status,
                    error=error,
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
            self.store.db.close()  # this thread's connection

    def run_once(
        self, *, only: set[str] | None = None, replay_since: float | None = None
    ) -> RunStats:
        """Fan out, then send every due delivery (endpoints in parallel, events in order).
        ``only``: send just these events and fan out nothing (``tulip alerts test``)."""
        stats = RunStats()
        self.sync_endpoints()
        if only is None:
            stats.fanned_out = self.fan_out(replay_since=replay_since)
        due = self.due(only=only)
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


# -- starting a deliverer ---------------------------------------------------------------------


def spawn_deliverer(root: Path, *, config_override: Path | str | None = None) -> bool:
    """Start a detached deliverer unless one runs; True if one was started."""
    root = Path(root)
    if deliverer_running(root):
        return False
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "reports.alerts.delivery", "--root", str(root)]
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
    root: Path,
    config: AlertConfig,
    *,
    once: bool = False,
    idle_exit: float | None = None,
    replay_since: float | None = None,
) -> RunStats | None:
    """Run a deliverer in this process, holding the lock; raises if another one runs.
    ``replay_since``: first fan out every event since then (``--replay``)."""
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
                return d.run_once(replay_since=replay_since)
            if replay_since is not None:
                d.sync_endpoints()
                d.fan_out(replay_since=replay_since)
            d.run(idle_exit=idle_exit)
            return None
        finally:
            store.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m reports.alerts.delivery", description=__doc__.split("\n")[0]
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
                f"reports.alerts: no endpoints in {config.path}; nothing to deliver",
                file=sys.stderr,
            )
            return 0
        idle = None if args.forever else config.delivery.idle_exit_seconds
        serve(args.root.absolute(), config, once=args.once, idle_exit=idle)
    except DelivererRunning as e:
        print(f"reports.alerts: {e}", file=sys.stderr)
        return 0
    except TulipError as e:
        print(f"reports.alerts: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
