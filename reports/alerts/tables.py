"""The alert tables, ``deliveries`` and ``endpoints``: the one place alert state is written.

They live in the store's SQLite file, beside the outbox they fan out, so that recording an
attempt is a transaction like any other. They are the alerts' own component
(``schema_migrations`` records ``alerts#N``), created the first time alert code opens a store;
events themselves are read through :class:`pipelines.embedded.outbox.Outbox`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pipelines.embedded.db import Connection, Database, Migration

PENDING = "pending"
RETRYING = "retrying"
DELIVERED = "delivered"
FAILED = "failed"
DISABLED = "disabled"  # the endpoint answered 410 Gone
STATES = (PENDING, RETRYING, DELIVERED, FAILED, DISABLED)
WAITING = (PENDING, RETRYING)

MIGRATIONS = [
    Migration(
        "webhook deliveries and endpoints",
        # IF NOT EXISTS: stores of the old format made these tables with the outbox.
        """
        CREATE TABLE IF NOT EXISTS deliveries (
            event_id     TEXT NOT NULL REFERENCES outbox(id) ON DELETE CASCADE,
            endpoint     TEXT NOT NULL,
            state        TEXT NOT NULL,
            attempts     INTEGER NOT NULL DEFAULT 0,
            next_attempt REAL,
            last_status  INTEGER,
            last_error   TEXT,
            delivered    REAL,
            PRIMARY KEY (event_id, endpoint)
        );
        CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(state, next_attempt);
        CREATE TABLE IF NOT EXISTS endpoints (
            name     TEXT PRIMARY KEY,
            url      TEXT NOT NULL,
            disabled REAL,
            reason   TEXT
        )
        """,
    ),
    Migration(
        "the cluster follower's cursor and the jobs it announced",
        """
        CREATE TABLE IF NOT EXISTS followed_clusters (
            cluster   TEXT PRIMARY KEY,
            watermark REAL NOT NULL
        );
        CREATE TABLE IF NOT EXISTS followed_jobs (
            cluster  TEXT NOT NULL,
            pipeline TEXT NOT NULL,
            job      TEXT NOT NULL,
            events   TEXT NOT NULL,
            at       REAL NOT NULL,
            PRIMARY KEY (cluster, pipeline, job)
        )
        """,
    ),
    Migration(
        "an endpoint starts from when it was added",
        # NULL for endpoints recorded before: they keep the old horizon (the last day)
        "ALTER TABLE endpoints ADD COLUMN since REAL",
    ),
]


@dataclass(frozen=True)
class Delivery:
    event_id: str
    endpoint: str
    state: str
    attempts: int = 0
    next_attempt: float | None = None
    last_status: int | None = None
    last_error: str | None = None
    delivered: float | None = None


@dataclass(frozen=True)
class EndpointState:
    name: str
    url: str
    disabled: float | None
    reason: str | None
    since: float | None = None  # events before this are not fanned out to it (None: old row)


class AlertTables:
    """Delivery state of one store."""

    def __init__(self, db: Database):
        self.db = db
        db.migrate({"alerts": MIGRATIONS})

    # -- endpoints -------------------------------------------------------------------------
    def sync_endpoints(self, endpoints: Iterable[tuple[str, str]], *, now: float | None) -> None:
        """Record configured (name, url) pairs; a new endpoint starts from ``now`` (it gets
        no event from before it was added); a changed URL lifts an earlier disablement."""
        with self.db.transaction() as conn:
            for name, url in endpoints:
                row = conn.execute("SELECT url FROM endpoints WHERE name = ?", (name,)).fetchone()
                if row is None:
                    conn.execute(
                        "INSERT INTO endpoints(name, url, since) VALUES (?, ?, ?)", (name, url, now)
                    )
                elif row["url"] != url:
                    conn.execute(
                        "UPDATE endpoints SET url = ?, disabled = NULL, reason = NULL WHERE name = ?",
                        (url, name),
                    )

    def endpoints(self) -> dict[str, EndpointState]:
        return {
            r["name"]: EndpointState(r["name"], r["url"], r["disabled"], r["reason"], r["since"])
            for r in self.db.execute("SELECT * FROM endpoints")
        }

    def disable(self, conn: Connection, name: str, when: float, reason: str) -> None:
        conn.execute(
            "UPDATE endpoints SET disabled = ?, reason = ? WHERE name = ?", (when, reason, name)
        )

    def enable(self, conn: Connection, name: str) -> None:
        conn.execute("UPDATE endpoints SET disabled = NULL, reason = NULL WHERE name = ?", (name,))

    # -- deliveries ------------------------------------------------------------------------
    def existing(self, conn: Connection, event_ids: list[str]) -> set[tuple[str, str]]:
        """(event, endpoint) pairs that already have a delivery."""
        out: set[tuple[str, str]] = set()
        for i in range(0, len(event_ids), 500):
            chunk = event_ids[i : i + 500]
            out |= {
                (r[0], r[1])
                for r in conn.execute(
                    f"SELECT event_id, endpoint FROM deliveries "
                    f"WHERE event_id IN ({','.join('?' * len(chunk))})",
                    chunk,
                )
            }
        return out

    def create(self, conn: Connection, event_id: str, endpoint: str, when: float) -> bool:
        """A pending delivery, unless one exists; True if it was created."""
        return (
            conn.execute(
                "INSERT OR IGNORE INTO deliveries(event_id, endpoint, state, attempts, next_attempt) "
                "VALUES (?, ?, ?, 0, ?)",
                (event_id, endpoint, PENDING, when),
            ).rowcount
            == 1
        )

    def get(self, conn: Connection, event_id: str, endpoint: str) -> Delivery | None:
        r = conn.execute(
            "SELECT * FROM deliveries WHERE event_id = ? AND endpoint = ?", (event_id, endpoint)
        ).fetchone()
        return None if r is None else Delivery(**dict(r))

    def of_event(self, event_id: str) -> list[Delivery]:
        return [
            Delivery(**dict(r))
            for r in self.db.execute(
                "SELECT * FROM deliveries WHERE event_id = ? ORDER BY endpoint", (event_id,)
            )
        ]

    def due(self, now: float, endpoints: list[str]) -> list[tuple[str, str]]:
        """(event, endpoint) of waiting deliveries due by ``now``, to enabled endpoints."""
        if not endpoints:
            return []
        marks = ",".join("?" * len(endpoints))
        return [
            (r[0], r[1])
            for r in self.db.execute(
                f"SELECT d.event_id, d.endpoint FROM deliveries d "
                f"JOIN endpoints e ON e.name = d.endpoint "
                f"WHERE d.state IN (?, ?) AND d.next_attempt <= ? AND e.disabled IS NULL "
                f"AND d.endpoint IN ({marks})",
                (*WAITING, now, *endpoints),
            )
        ]

    def next_due(self) -> float | None:
        row = self.db.execute(
            "SELECT MIN(d.next_attempt) FROM deliveries d JOIN endpoints e ON e.name = d.endpoint "
            "WHERE d.state IN (?, ?) AND e.disabled IS NULL",
            WAITING,
        ).fetchone()
        return row[0] if row and row[0] is not None else None

    def delivered(
        self,
        conn: Connection,
        event_id: str,
        endpoint: str,
        attempts: int,
        status: int,
        when: float,
    ) -> None:
        conn.execute(
            "UPDATE deliveries SET state = ?, attempts = ?, next_attempt = NULL, last_status = ?, "
            "last_error = NULL, delivered = ? WHERE event_id = ? AND endpoint = ?",
            (DELIVERED, attempts, status, when, event_id, endpoint),
        )

    def attempted(
        self,
        conn: Connection,
        event_id: str,
        endpoint: str,
        *,
        state: str,
        attempts: int,
        next_attempt: float | None,
        status: int | None,
        error: str | None,
    ) -> None:
        conn.execute(
            "UPDATE deliveries SET state = ?, attempts = ?, next_attempt = ?, last_status = ?, "
            "last_error = ? WHERE event_id = ? AND endpoint = ?",
            (state, attempts, next_attempt, status, error, event_id, endpoint),
        )

    def rearm(self, conn: Connection, event_id: str, endpoint: str, when: float) -> None:
        conn.execute(
            "UPDATE deliveries SET state = ?, attempts = 0, next_attempt = ? "
            "WHERE event_id = ? AND endpoint = ?",
            (PENDING, when, event_id, endpoint),
        )

    # -- the cluster follower (reports.alerts.follower) -------------------------------------
    def follow_watermark(self, cluster: str, start: float) -> float:
        """The follower's cursor for ``cluster``: jobs created before it were all announced.
        The first call records ``start`` (now, or ``--replay SINCE``) and returns it."""
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO followed_clusters(cluster, watermark) VALUES (?, ?)",
                (cluster, start),
            )
            row = conn.execute(
                "SELECT watermark FROM followed_clusters WHERE cluster = ?", (cluster,)
            ).fetchone()
        return float(row["watermark"])

    def advance_watermark(self, cluster: str, watermark: float) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE followed_clusters SET watermark = MAX(watermark, ?) WHERE cluster = ?",
                (watermark, cluster),
            )

    def followed(self, cluster: str, pipeline: str, jobs: list[str]) -> set[str]:
        """Which of these jobs were announced already."""
        out: set[str] = set()
        for i in range(0, len(jobs), 500):
            chunk = jobs[i : i + 500]
            out |= {
                r[0]
                for r in self.db.execute(
                    f"SELECT job FROM followed_jobs WHERE cluster = ? AND pipeline = ? "
                    f"AND job IN ({','.join('?' * len(chunk))})",
                    [cluster, pipeline, *chunk],
                )
            }
        return out

    def mark_followed(
        self, conn: Connection, cluster: str, pipeline: str, job: str, events: list[str], at: float
    ) -> bool:
        """Record a job as announced, in the transaction that writes its events; False (and
        nothing written) if it was already: the caller then rolls its events back."""
        import json

        return (
            conn.execute(
                "INSERT OR IGNORE INTO followed_jobs(cluster, pipeline, job, events, at) "
                "VALUES (?, ?, ?, ?, ?)",
                (cluster, pipeline, job, json.dumps(events), at),
            ).rowcount
            == 1
        )
