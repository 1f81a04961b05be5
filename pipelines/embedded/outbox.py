"""The event outbox: what happened (an audit failed, a job failed, a gate blocked a model),
written in the same transaction as the result it reports, so that an event is never lost
to a crash and never announces something that did not commit.

Delivering events (signed webhooks, retries) is not the base layer's business:
``reports.alerts`` reads them through :class:`Outbox` and keeps its own tables.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass

from ..info import iso
from .db import Connection, Database, Migration

MIGRATIONS = [
    Migration(
        "event outbox",
        """
        CREATE TABLE outbox (
            id      TEXT PRIMARY KEY,
            type    TEXT NOT NULL,
            subject TEXT NOT NULL,
            time    REAL NOT NULL,
            data    TEXT NOT NULL,
            seq     INTEGER NOT NULL
        )
        """,
    ),
    Migration("events in order", "CREATE INDEX IF NOT EXISTS outbox_by_seq ON outbox(seq)"),
]


@dataclass(frozen=True)
class Event:
    """One event of the outbox."""

    id: str
    type: str
    subject: str
    time: float
    data: dict
    seq: int = 0

    def as_dict(self) -> dict:
        return {"id": self.id, "type": self.type, "subject": self.subject, "time": iso(self.time),
                "data": self.data, "seq": self.seq}  # fmt: skip


def _event(row) -> Event:
    return Event(
        row["id"], row["type"], row["subject"], row["time"], json.loads(row["data"]), row["seq"]
    )


class Outbox:
    def __init__(self, db: Database):
        self.db = db

    def emit(
        self, conn: Connection, type_: str, subject: str, data: dict, *, at: float | None = None
    ) -> str:
        """Record an event in the caller's open transaction; returns its ID."""
        if not conn.in_transaction:
            raise RuntimeError("events are written inside the transaction they report on")
        eid = uuid.uuid4().hex
        conn.execute(
            "INSERT INTO outbox(id, type, subject, time, data, seq) VALUES (?,?,?,?,?,?)",
            (
                eid,
                type_,
                subject,
                time.time() if at is None else at,
                json.dumps(data, sort_keys=True),
                self.db.next_value(conn, "event"),
            ),
        )
        return eid

    def emit_now(self, type_: str, subject: str, data: dict, *, at: float | None = None) -> str:
        """Record an event on its own (a test alert, say)."""
        with self.db.transaction() as conn:
            return self.emit(conn, type_, subject, data, at=at)

    def since(self, when: float) -> list[Event]:
        """Events at or after a time, oldest first."""
        return [
            _event(r)
            for r in self.db.execute("SELECT * FROM outbox WHERE time >= ? ORDER BY seq", (when,))
        ]

    def get(self, ids: list[str]) -> dict[str, Event]:
        out: dict[str, Event] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            for r in self.db.execute(
                f"SELECT * FROM outbox WHERE id IN ({','.join('?' * len(chunk))})", chunk
            ):
                out[r["id"]] = _event(r)
        return out

    def newest(self, *, limit: int = 50, type_glob: str | None = None) -> list[Event]:
        """Events newest first, optionally only types matching a glob (``audit.*``)."""
        sql, args = "SELECT * FROM outbox", []
        if type_glob:
            sql += " WHERE type GLOB ?"
            args.append(type_glob)
        sql += " ORDER BY seq DESC LIMIT ?"
        args.append(int(limit))
        return [_event(r) for r in self.db.execute(sql, args)]

    def matching(self, id_or_prefix: str, *, limit: int = 2) -> list[Event]:
        """The event with this ID, else those whose ID starts with it (at most ``limit``)."""
        rows = self.db.execute(
            "SELECT * FROM outbox WHERE id = ? OR id LIKE ? ORDER BY id = ? DESC LIMIT ?",
            (
                id_or_prefix,
                id_or_prefix.replace("%", "").replace("_", "") + "%",
                id_or_prefix,
                limit,
            ),
        ).fetchall()
        return [_event(r) for r in rows]
