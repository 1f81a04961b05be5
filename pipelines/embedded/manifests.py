"""What files each commit holds: the ``files`` table.

Every function runs in the caller's connection, so a commit's files land in the same
transaction as the commit row that names them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ..errors import FileNotFound, InvalidPath
from .db import Connection, Migration

MIGRATIONS = [
    Migration(
        "files of each commit",
        """
        CREATE TABLE files (
            repo      TEXT NOT NULL,
            commit_id TEXT NOT NULL,
            path      TEXT NOT NULL,
            hash      TEXT NOT NULL,
            size      INTEGER NOT NULL,
            PRIMARY KEY (repo, commit_id, path),
            FOREIGN KEY (repo, commit_id) REFERENCES commits(repo, id) ON DELETE CASCADE
        ) WITHOUT ROWID;
        CREATE INDEX files_by_hash ON files(hash)
        """,
    ),
]

Op = tuple  # ("put", path, hash, size) or ("delete", path)


def subtree_bounds(path: str) -> tuple[str, str]:
    """Half-open range of paths strictly under ``path`` ('/a' -> ['/a/', '/a0'))."""
    prefix = "/" if path == "/" else path + "/"
    return prefix, prefix[:-1] + chr(ord("/") + 1)


def copy(conn: Connection, repo: str, src: str, dst: str) -> None:
    conn.execute(
        "INSERT INTO files(repo, commit_id, path, hash, size) "
        "SELECT repo, ?, path, hash, size FROM files WHERE repo = ? AND commit_id = ?",
        (dst, repo, src),
    )


def clear(conn: Connection, repo: str, cid: str) -> None:
    conn.execute("DELETE FROM files WHERE repo = ? AND commit_id = ?", (repo, cid))


def apply(conn: Connection, repo: str, cid: str, ops: Iterable[Op], *, branch: str) -> None:
    """Apply staged puts and deletes, in order, to a commit that starts as its parent's copy."""
    for op in ops:
        if op[0] == "delete":
            _delete(conn, repo, cid, op[1], branch)
        else:
            _put(conn, repo, cid, op[1], op[2], op[3])


def _delete(conn: Connection, repo: str, cid: str, path: str, branch: str) -> None:
    lo, hi = subtree_bounds(path)
    n = conn.execute(
        "DELETE FROM files WHERE repo = ? AND commit_id = ? AND (path = ? OR (path >= ? AND path < ?))",
        (repo, cid, path, lo, hi),
    ).rowcount
    if n == 0:
        raise FileNotFound(f"no file or directory {path} in {repo}@{branch}; nothing was deleted")


def _put(conn: Connection, repo: str, cid: str, path: str, digest: str, size: int) -> None:
    lo, hi = subtree_bounds(path)
    if conn.execute(
        "SELECT 1 FROM files WHERE repo = ? AND commit_id = ? AND path >= ? AND path < ? LIMIT 1",
        (repo, cid, lo, hi),
    ).fetchone():
        raise InvalidPath(f"cannot put file {path} in {repo}: {path} is a directory there")
    parts = path.strip("/").split("/")
    ancestors = ["/" + "/".join(parts[:i]) for i in range(1, len(parts))]
    if ancestors:
        clash = conn.execute(
            f"SELECT path FROM files WHERE repo = ? AND commit_id = ? AND path IN ({','.join('?' * len(ancestors))})",
            (repo, cid, *ancestors),
        ).fetchone()
        if clash:
            raise InvalidPath(f"cannot put file {path} in {repo}: {clash[0]} is a file there")
    conn.execute(
        "INSERT OR REPLACE INTO files(repo, commit_id, path, hash, size) VALUES (?,?,?,?,?)",
        (repo, cid, path, digest, size),
    )


def write(conn: Connection, repo: str, cid: str, rows: Iterable[tuple[str, str, int]]) -> None:
    """Set files (path, hash, size) of a commit, replacing any at the same paths."""
    conn.executemany(
        "INSERT OR REPLACE INTO files(repo, commit_id, path, hash, size) VALUES (?,?,?,?,?)",
        [(repo, cid, p, h, s) for p, h, s in rows],
    )


def size(conn: Connection, repo: str, cid: str) -> int:
    return conn.execute(
        "SELECT COALESCE(SUM(size), 0) FROM files WHERE repo = ? AND commit_id = ?", (repo, cid)
    ).fetchone()[0]


def walk(conn: Connection, repo: str, cid: str, path: str = "/") -> Iterator[tuple[str, str, int]]:
    """(path, hash, size) of every file at or under ``path``, in path order."""
    lo, hi = subtree_bounds(path)
    yield from (
        tuple(r)
        for r in conn.execute(
            "SELECT path, hash, size FROM files WHERE repo = ? AND commit_id = ? "
            "AND (path = ? OR (path >= ? AND path < ?)) ORDER BY path",
            (repo, cid, path, lo, hi),
        ).fetchall()
    )


def hashes(conn: Connection, repo: str, cid: str, path: str = "/") -> dict[str, str]:
    return {p: h for p, h, _s in walk(conn, repo, cid, path)}


def referenced(conn: Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT DISTINCT hash FROM files")}


def problems(conn: Connection) -> list[str]:
    """Finished commits whose recorded size is not the sum of their files."""
    return [
        f"commit {r[0]}@{r[1]} records {r[2]} bytes but its files sum to {r[3]}"
        for r in conn.execute(
            "SELECT c.repo, c.id, c.size_bytes, COALESCE(SUM(f.size), 0) FROM commits c "
            "LEFT JOIN files f ON f.repo = c.repo AND f.commit_id = c.id "
            "WHERE c.finished IS NOT NULL GROUP BY c.repo, c.id "
            "HAVING c.size_bytes != COALESCE(SUM(f.size), 0)"
        )
    ]


def lookup(conn: Connection, repo: str, cid: str, path: str) -> tuple[str, int] | None:
    """(hash, size) of one file of a commit, or None."""
    r = conn.execute(
        "SELECT hash, size FROM files WHERE repo = ? AND commit_id = ? AND path = ?",
        (repo, cid, path),
    ).fetchone()
    return None if r is None else (r[0], r[1])
