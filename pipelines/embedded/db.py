"""The one SQLite file of a store: connections, transactions and recorded migrations.

Every module that owns tables declares them as named migrations of its own *component*
(``store``, ``jobs``, ``services``, ``outbox``; ``alerts`` from ``reports.alerts``) and asks
``Database.migrate`` to apply what is missing. Each applied migration is a row of
``schema_migrations``, written in the transaction that applied it, so a store is migrated
once and atomically, or not at all. Never edit a migration that has shipped; add the next.

Connections are per thread (SQLite connections must not cross threads), in WAL mode with a
busy timeout, so readers never block the writer and writers queue for the lock.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import TulipError

DB_NAME = "tulip.db"
BUSY_TIMEOUT_MS = 60_000

Connection = sqlite3.Connection
Row = sqlite3.Row
IntegrityError = sqlite3.IntegrityError


@dataclass(frozen=True)
class Migration:
    """One named schema change: SQL statements, or a function run inside the transaction."""

    name: str
    apply: str | Callable[[sqlite3.Connection], None]


# Stores made before migrations were recorded kept a bare count in PRAGMA user_version:
# 1 = the initial data model, 2 = plus the event outbox (and the alert tables).
_INITIAL = {"store": 1, "commits": 1, "manifests": 1, "jobs": 1, "services": 1}
LEGACY_VERSIONS: dict[int, dict[str, int]] = {1: _INITIAL, 2: {**_INITIAL, "outbox": 1}}


class MigrationFailed(TulipError):
    """A schema migration could not run; the store was left exactly as it was."""


class Database:
    """A store's SQLite file, with one connection per thread."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._local = threading.local()
        self._known: dict[str, int] = {}

    # -- connections -----------------------------------------------------------------------
    @property
    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA temp_store = FILE")
            self._local.conn = conn
        return conn

    def execute(self, sql: str, args: Sequence | Mapping = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, args)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- transactions ----------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: ``BEGIN IMMEDIATE`` takes the write lock up front.

        Nested use joins the outer transaction."""
        conn = self.conn
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    @contextmanager
    def savepoint(self, name: str) -> Iterator[sqlite3.Connection]:
        """A nested atomic step inside a transaction: on an exception only it is undone."""
        conn = self.conn
        if not conn.in_transaction:
            raise RuntimeError("a savepoint needs an open transaction")
        conn.execute(f"SAVEPOINT {name}")
        try:
            yield conn
        except BaseException:
            conn.execute(f"ROLLBACK TO {name}")
            conn.execute(f"RELEASE {name}")
            raise
        else:
            conn.execute(f"RELEASE {name}")

    def next_value(self, conn: sqlite3.Connection, counter: str) -> int:
        """The next number of a named sequence (commits, jobs, events), in the caller's
        transaction."""
        return conn.execute(
            "INSERT INTO counters(name, value) VALUES (?, 1) "
            "ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value",
            (counter,),
        ).fetchone()[0]

    # -- migrations ------------------------------------------------------------------------
    def migrate(self, components: Mapping[str, Sequence[Migration]]) -> list[str]:
        """Apply every migration of these components not yet recorded, in one transaction.

        Returns the names applied (empty when the store was up to date, the common case,
        which takes no write lock)."""
        if all(self._known.get(c) == len(m) for c, m in components.items()):
            return []
        conn = self.conn
        if self._up_to_date(conn, components):
            return []
        applied: list[str] = []
        try:
            with self.transaction():
                self._prepare(conn)
                for component, migrations in components.items():
                    done = self._recorded(conn).get(component, 0)
                    if done > len(migrations):
                        raise MigrationFailed(
                            f"{self.path} was written by a newer Tulip ({component} schema "
                            f"{done}, this one knows {len(migrations)}); upgrade Tulip to open it"
                        )
                    for number, migration in enumerate(migrations[done:], start=done + 1):
                        self._apply(conn, migration)
                        conn.execute(
                            "INSERT INTO schema_migrations(component, number, name, applied) "
                            "VALUES (?,?,?,?)",
                            (component, number, migration.name, time.time()),
                        )
                        applied.append(f"{component}#{number} {migration.name}")
        except sqlite3.DatabaseError as e:
            if isinstance(e, sqlite3.OperationalError) and "locked" in str(e):
                raise
            raise MigrationFailed(
                f"cannot migrate {self.path}: {e}; the store was left as it was "
                "(back it up and report this, or restore it from a copy)"
            ) from e
        for component, migrations in components.items():
            self._known[component] = len(migrations)
        return applied

    def _up_to_date(self, conn, components) -> bool:
        try:
            recorded = self._recorded(conn)
        except sqlite3.OperationalError:  # no schema_migrations table yet
            return False
        if all(recorded.get(c, 0) == len(m) for c, m in components.items()):
            for component, migrations in components.items():
                self._known[component] = len(migrations)
            return True
        return False

    @staticmethod
    def _recorded(conn) -> dict[str, int]:
        return {
            r[0]: r[1]
            for r in conn.execute(
                "SELECT component, MAX(number) FROM schema_migrations GROUP BY component"
            )
        }

    def _prepare(self, conn) -> None:
        """The bookkeeping tables; a store of the old format gets its history recorded."""
        exists = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
        ).fetchone()
        if exists:
            return
        conn.execute(
            "CREATE TABLE schema_migrations (component TEXT NOT NULL, number INTEGER NOT NULL, "
            "name TEXT NOT NULL, applied REAL NOT NULL, PRIMARY KEY (component, number))"
        )
        conn.execute(
            "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)"
        )
        legacy = conn.execute("PRAGMA user_version").fetchone()[0]
        if legacy == 0:
            return
        if legacy not in LEGACY_VERSIONS:
            raise MigrationFailed(
                f"{self.path} has schema version {legacy}, which no Tulip release wrote; "
                "it is not a Tulip store, or it is damaged"
            )
        for component, upto in LEGACY_VERSIONS[legacy].items():
            for number in range(1, upto + 1):
                conn.execute(
                    "INSERT INTO schema_migrations(component, number, name, applied) "
                    "VALUES (?,?,?,?)",
                    (component, number, "(recorded from the legacy schema version)", time.time()),
                )

    @staticmethod
    def _apply(conn, migration: Migration) -> None:
        if callable(migration.apply):
            migration.apply(conn)
            return
        for stmt in migration.apply.split(";"):
            if stmt.strip():
                conn.execute(stmt)

    # -- checks ----------------------------------------------------------------------------
    def integrity_problems(self) -> list[str]:
        problems = []
        integrity = self.conn.execute("PRAGMA integrity_check").fetchone()[0]
        if integrity != "ok":
            problems.append(f"SQLite integrity check: {integrity}")
        for r in self.conn.execute("PRAGMA foreign_key_check"):
            problems.append(f"dangling row in {r[0]} (rowid {r[1]}) pointing into {r[2]}")
        return problems

    def size_bytes(self) -> int:
        """Bytes of the database file and its write-ahead log."""
        total = 0
        for suffix in ("", "-wal"):
            p = Path(str(self.path) + suffix)
            if p.exists():
                total += p.stat().st_size
        return total
