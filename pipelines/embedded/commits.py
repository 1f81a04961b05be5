"""Commit rows and their provenance: the ``commits`` and ``commit_provenance`` tables.

A commit is opened (``started``) and closed (``finished``, its size, and an ``error`` when the
job behind it failed) in the transaction of whoever writes it: the store for user and spec
commits, ``jobs`` for pipeline output. Every function here runs in the caller's connection.
"""

from __future__ import annotations

import json

from ..errors import CommitNotFound
from ..info import CommitInfo, CommitRef
from .db import Connection, Database, Migration, Row

MIGRATIONS = [
    Migration(
        "commits and provenance",
        """
        CREATE TABLE commits (
            repo        TEXT NOT NULL REFERENCES repos(name) ON DELETE CASCADE,
            id          TEXT NOT NULL,
            branch      TEXT,
            origin      TEXT NOT NULL CHECK (origin IN ('USER', 'AUTO')),
            parent      TEXT,
            started     REAL NOT NULL,
            finished    REAL,
            size_bytes  INTEGER NOT NULL DEFAULT 0,
            description TEXT NOT NULL DEFAULT '',
            error       TEXT,
            metadata    TEXT NOT NULL DEFAULT '{}',
            seq         INTEGER NOT NULL,
            PRIMARY KEY (repo, id)
        );
        CREATE INDEX commits_by_set ON commits(id);
        CREATE INDEX commits_by_branch ON commits(repo, branch, seq);
        CREATE TABLE commit_provenance (
            repo        TEXT NOT NULL,
            id          TEXT NOT NULL,
            prov_repo   TEXT NOT NULL,
            prov_branch TEXT,
            prov_id     TEXT NOT NULL,
            PRIMARY KEY (repo, id, prov_repo, prov_id),
            FOREIGN KEY (repo, id) REFERENCES commits(repo, id) ON DELETE CASCADE
        );
        CREATE INDEX commit_subvenance ON commit_provenance(prov_repo, prov_id)
        """,
    ),
]


def insert(
    db: Database,
    conn: Connection,
    repo: str,
    cid: str,
    branch: str | None,
    origin: str,
    parent: str | None,
    started: float,
    description: str = "",
) -> None:
    conn.execute(
        "INSERT INTO commits(repo, id, branch, origin, parent, started, description, seq) "
        "VALUES (?,?,?,?,?,?,?,?)",
        (repo, cid, branch, origin, parent, started, description, db.next_value(conn, "commit")),
    )


def close(
    conn: Connection, repo: str, cid: str, finished: float, size: int, error: str | None = None
) -> None:
    conn.execute(
        "UPDATE commits SET finished = ?, size_bytes = ?, error = ? WHERE repo = ? AND id = ?",
        (finished, size, error, repo, cid),
    )


def row(conn: Connection, repo: str, cid: str) -> Row | None:
    return conn.execute("SELECT * FROM commits WHERE repo = ? AND id = ?", (repo, cid)).fetchone()


def require(conn: Connection, repo: str, cid: str) -> Row:
    r = row(conn, repo, cid)
    if r is None:
        raise CommitNotFound(f"no commit {cid} in {repo}; `tulip list commit {repo}` shows them")
    return r


def info(conn: Connection, r: Row) -> CommitInfo:
    prov = [
        CommitRef(p["prov_repo"], p["prov_branch"], p["prov_id"])
        for p in conn.execute(
            "SELECT prov_repo, prov_branch, prov_id FROM commit_provenance "
            "WHERE repo = ? AND id = ? ORDER BY prov_repo",
            (r["repo"], r["id"]),
        )
    ]
    return CommitInfo(
        repo=r["repo"],
        branch=r["branch"],
        id=r["id"],
        origin=r["origin"],
        parent=r["parent"],
        started=r["started"],
        finished=r["finished"],
        size_bytes=r["size_bytes"],
        description=r["description"],
        error=r["error"],
        direct_provenance=prov,
        metadata=json.loads(r["metadata"] or "{}"),
    )


def of_repo(conn: Connection, repo: str, branch: str | None, limit: int | None) -> list[Row]:
    sql = "SELECT * FROM commits WHERE repo = ?"
    args: list = [repo]
    if branch is not None:
        sql += " AND branch = ?"
        args.append(branch)
    sql += " ORDER BY seq DESC"
    if limit:
        sql += f" LIMIT {int(limit)}"
    return conn.execute(sql, args).fetchall()


def ids_with_prefix(conn: Connection, repo: str, prefix: str, limit: int) -> list[str]:
    """IDs of the repo's commits that start with a hex ``prefix``: a range of the primary key,
    not a scan of the repo."""
    upper = prefix + "g"  # after every hex digit
    rows = conn.execute(
        "SELECT id FROM commits WHERE repo = ? AND id >= ? AND id < ? ORDER BY id LIMIT ?",
        (repo, prefix, upper, int(limit)),
    ).fetchall()
    return [r["id"] for r in rows]


def of_set(conn: Connection, set_id: str, *, newest_first: bool = False) -> list[Row]:
    order = "DESC" if newest_first else ""
    return conn.execute(
        f"SELECT * FROM commits WHERE id = ? ORDER BY seq {order}", (set_id,)
    ).fetchall()


def children(conn: Connection, repo: str, cid: str) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT id FROM commits WHERE repo = ? AND parent = ? ORDER BY seq", (repo, cid)
        )
    ]


def add_provenance(
    conn: Connection, repo: str, cid: str, prov_repo: str, prov_branch: str | None, prov_id: str
) -> None:
    conn.execute(
        "INSERT INTO commit_provenance(repo, id, prov_repo, prov_branch, prov_id) "
        "VALUES (?,?,?,?,?)",
        (repo, cid, prov_repo, prov_branch, prov_id),
    )


def subvenance(conn: Connection, repo: str, cid: str) -> list[CommitRef]:
    rows = conn.execute(
        "SELECT p.repo, c.branch, p.id FROM commit_provenance p JOIN commits c "
        "ON c.repo = p.repo AND c.id = p.id WHERE p.prov_repo = ? AND p.prov_id = ? "
        "ORDER BY c.seq",
        (repo, cid),
    ).fetchall()
    return [CommitRef(r[0], r[1], r[2]) for r in rows]


def waiting_on(conn: Connection, repo: str, cid: str) -> bool:
    """Does this commit read an input commit that is still open?"""
    return (
        conn.execute(
            "SELECT 1 FROM commit_provenance p JOIN commits c "
            "ON c.repo = p.prov_repo AND c.id = p.prov_id "
            "WHERE p.repo = ? AND p.id = ? AND c.finished IS NULL LIMIT 1",
            (repo, cid),
        ).fetchone()
        is not None
    )


def set_metadata(conn: Connection, repo: str, cid: str, metadata: dict[str, str]) -> None:
    r = require(conn, repo, cid)
    merged = {**json.loads(r["metadata"] or "{}"), **{str(k): str(v) for k, v in metadata.items()}}
    conn.execute(
        "UPDATE commits SET metadata = ? WHERE repo = ? AND id = ?",
        (json.dumps(merged, sort_keys=True), repo, cid),
    )


def delete(conn: Connection, repo: str, cid: str) -> None:
    conn.execute("DELETE FROM commits WHERE repo = ? AND id = ?", (repo, cid))


def open_rows(conn: Connection) -> list[Row]:
    return conn.execute("SELECT repo, id FROM commits WHERE finished IS NULL").fetchall()


def problems(conn: Connection) -> list[str]:
    """Commits whose parent is missing."""
    return [
        f"commit {r[0]}@{r[1]} has missing parent {r[2]}"
        for r in conn.execute(
            "SELECT c.repo, c.id, c.parent FROM commits c LEFT JOIN commits p "
            "ON p.repo = c.repo AND p.id = c.parent WHERE c.parent IS NOT NULL AND p.id IS NULL"
        )
    ]
