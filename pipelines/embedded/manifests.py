"""What files each commit holds, stored as changes: ``manifest_commits``, ``file_changes``,
``file_layers``.

A commit stores only what it changed against its parent (``file_changes``: a put, or a
tombstone with ``hash`` NULL, plus the value it replaced), so a commit that touches k files
of a million adds k rows. Reading a commit 1,000 commits deep must not replay 1,000 deltas,
so commits also form a skip list, as Subversion's skip-deltas do: a commit at depth d (its
number of ancestors) is resolved against its ancestor at depth ``d & (d - 1)`` (its *base*),
and a commit whose base is not its parent keeps a ``file_layers`` row set: every change since
that base. A commit's files are then the nearest entry per path along at most
``popcount(d) <= log2(d) + 1`` layers (``_chain``), and each change is copied into
O(log depth) layers in all, so metadata grows with the files changed, times a log factor
that only the commits at depth 2^k pay at once.

Every function runs in the caller's connection, so a commit's files land in the same
transaction as the commit row that names them. A commit has a manifest from the first
function here that writes it (an open commit reads as empty); a commit's parent must have its
manifest first, else the commit is stored whole, as if it had no parent.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ..errors import FileNotFound, InvalidPath
from .db import Connection, Migration

_TABLES = """
    CREATE TABLE manifest_commits (
        repo         TEXT NOT NULL,
        commit_id    TEXT NOT NULL,
        delta_parent TEXT,              -- what file_changes are against (NULL: nothing)
        depth        INTEGER NOT NULL,  -- commits before this one along delta_parent
        base         TEXT,              -- the ancestor the layer is against (NULL: nothing)
        layered      INTEGER NOT NULL,  -- 1: file_layers holds the layer, 0: file_changes does
        files        INTEGER NOT NULL,
        size_bytes   INTEGER NOT NULL,
        PRIMARY KEY (repo, commit_id),
        FOREIGN KEY (repo, commit_id) REFERENCES commits(repo, id) ON DELETE CASCADE
    ) WITHOUT ROWID;
    CREATE INDEX manifest_children ON manifest_commits(repo, delta_parent);
    CREATE TABLE file_changes (
        repo      TEXT NOT NULL,
        commit_id TEXT NOT NULL,
        path      TEXT NOT NULL,
        hash      TEXT,      -- NULL: deleted by this commit
        size      INTEGER,
        old_hash  TEXT,      -- NULL: added by this commit
        old_size  INTEGER,
        PRIMARY KEY (repo, commit_id, path),
        FOREIGN KEY (repo, commit_id) REFERENCES manifest_commits(repo, commit_id) ON DELETE CASCADE
    ) WITHOUT ROWID;
    CREATE TABLE file_layers (
        repo      TEXT NOT NULL,
        commit_id TEXT NOT NULL,
        path      TEXT NOT NULL,
        hash      TEXT,
        size      INTEGER,
        PRIMARY KEY (repo, commit_id, path),
        FOREIGN KEY (repo, commit_id) REFERENCES manifest_commits(repo, commit_id) ON DELETE CASCADE
    ) WITHOUT ROWID
"""


def _execute_script(conn: Connection, script: str) -> None:
    for stmt in script.split(";"):
        if stmt.strip():
            conn.execute(stmt)


def _from_full_copies(conn: Connection) -> None:
    """Convert the per-commit full copies of ``files`` into changes, oldest commit first."""
    _execute_script(conn, _TABLES)
    rows = conn.execute(
        "SELECT repo, id, parent FROM commits c WHERE finished IS NOT NULL "
        "OR EXISTS (SELECT 1 FROM files f WHERE f.repo = c.repo AND f.commit_id = c.id) "
        "ORDER BY seq"
    ).fetchall()
    for repo, cid, parent in rows:
        sealed_parent = parent if parent and _meta(conn, repo, parent) else None
        changes = conn.execute(
            "SELECT n.path, n.hash, n.size, o.hash, o.size FROM files n LEFT JOIN files o "
            "ON o.repo = n.repo AND o.commit_id = ? AND o.path = n.path "
            "WHERE n.repo = ? AND n.commit_id = ? AND (o.hash IS NULL OR o.hash != n.hash "
            "OR o.size != n.size) "
            "UNION ALL "
            "SELECT o.path, NULL, NULL, o.hash, o.size FROM files o LEFT JOIN files n "
            "ON n.repo = o.repo AND n.commit_id = ? AND n.path = o.path "
            "WHERE o.repo = ? AND o.commit_id = ? AND n.path IS NULL",
            (sealed_parent, repo, cid, cid, repo, sealed_parent),
        ).fetchall()
        _open(conn, repo, cid, sealed_parent)
        conn.executemany(
            "INSERT INTO file_changes(repo, commit_id, path, hash, size, old_hash, old_size) "
            "VALUES (?,?,?,?,?,?,?)",
            [(repo, cid, *r) for r in changes],
        )
        _seal(conn, repo, cid)
    conn.execute("DROP TABLE files")


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
    Migration("commits store their changes, not a copy of every file", _from_full_copies),
]

Op = tuple  # ("put", path, hash, size) or ("delete", path)
Entry = tuple[str, int] | None  # (hash, size) of a path, or None: no such file


@dataclass(frozen=True)
class Change:
    """One file a commit changed against its parent."""

    path: str
    old: Entry
    new: Entry


def subtree_bounds(path: str) -> tuple[str, str]:
    """Half-open range of paths strictly under ``path`` ('/a' -> ['/a/', '/a0'))."""
    prefix = "/" if path == "/" else path + "/"
    return prefix, prefix[:-1] + chr(ord("/") + 1)


# -- the skip list ---------------------------------------------------------------------------
def _meta(conn: Connection, repo: str, cid: str):
    return conn.execute(
        "SELECT delta_parent, depth, base, layered, files, size_bytes FROM manifest_commits "
        "WHERE repo = ? AND commit_id = ?",
        (repo, cid),
    ).fetchone()


def _chain(conn: Connection, repo: str, cid: str | None) -> list[tuple[str, str]]:
    """(commit, table) of every layer that makes up a commit's files, nearest first."""
    if cid is None:
        return []
    rows = conn.execute(
        "WITH RECURSIVE chain(cid, base, layered, rank) AS ("
        " SELECT commit_id, base, layered, 0 FROM manifest_commits WHERE repo = ?1 AND commit_id = ?2"
        " UNION ALL SELECT m.commit_id, m.base, m.layered, chain.rank + 1 FROM manifest_commits m"
        " JOIN chain ON m.repo = ?1 AND m.commit_id = chain.base)"
        " SELECT cid, layered FROM chain ORDER BY rank",
        (repo, cid),
    ).fetchall()
    return [(r[0], "file_layers" if r[1] else "file_changes") for r in rows]


def _parent_of(conn: Connection, repo: str, cid: str) -> str | None:
    r = conn.execute("SELECT parent FROM commits WHERE repo = ? AND id = ?", (repo, cid)).fetchone()
    return None if r is None else r[0]


def _open(conn: Connection, repo: str, cid: str, delta_parent: str | None = None) -> tuple:
    """The commit's manifest row, created (empty of changes) against its sealed parent."""
    meta = _meta(conn, repo, cid)
    if meta is not None:
        if conn.execute(
            "SELECT 1 FROM manifest_commits WHERE repo = ? AND delta_parent = ? LIMIT 1",
            (repo, cid),
        ).fetchone():
            raise InvalidPath(
                f"commit {repo}@{cid} already has children that build on its files; "
                "it cannot change"
            )
        return meta
    if delta_parent is None:
        parent = _parent_of(conn, repo, cid)
        delta_parent = parent if parent and _meta(conn, repo, parent) else None
    if delta_parent is None:
        depth, base = 0, None
    else:
        pmeta = _meta(conn, repo, delta_parent)
        depth = pmeta[1] + 1
        target = depth & (depth - 1)
        base = delta_parent
        while _meta(conn, repo, base)[1] != target:  # follows bases: at most log2(depth)
            base = _meta(conn, repo, base)[2]
    conn.execute(
        "INSERT INTO manifest_commits(repo, commit_id, delta_parent, depth, base, layered, "
        "files, size_bytes) VALUES (?,?,?,?,?,?,0,0)",
        (repo, cid, delta_parent, depth, base, int(base is not None and base != delta_parent)),
    )
    return _meta(conn, repo, cid)


def _seal(conn: Connection, repo: str, cid: str) -> None:
    """Recompute what is derived from a commit's changes: its layer, file count and size."""
    delta_parent, _depth, base, layered, _f, _s = _meta(conn, repo, cid)
    files, size = 0, 0
    if delta_parent is not None:
        pm = _meta(conn, repo, delta_parent)
        files, size = pm[4], pm[5]
    d_files, d_size = conn.execute(
        "SELECT COALESCE(SUM((hash IS NOT NULL) - (old_hash IS NOT NULL)), 0), "
        "COALESCE(SUM(COALESCE(size, 0) - COALESCE(old_size, 0)), 0) FROM file_changes "
        "WHERE repo = ? AND commit_id = ?",
        (repo, cid),
    ).fetchone()
    conn.execute(
        "UPDATE manifest_commits SET files = ?, size_bytes = ? WHERE repo = ? AND commit_id = ?",
        (files + d_files, size + d_size, repo, cid),
    )
    if not layered:
        return
    conn.execute("DELETE FROM file_layers WHERE repo = ? AND commit_id = ?", (repo, cid))
    conn.execute(
        "INSERT INTO file_layers(repo, commit_id, path, hash, size) "
        "SELECT repo, commit_id, path, hash, size FROM file_changes WHERE repo = ? AND commit_id = ?",
        (repo, cid),
    )
    for layer, table in _chain(conn, repo, delta_parent):
        if layer == base:
            break
        conn.execute(
            "INSERT OR IGNORE INTO file_layers(repo, commit_id, path, hash, size) "
            f"SELECT repo, ?, path, hash, size FROM {table} WHERE repo = ? AND commit_id = ?",
            (cid, repo, layer),
        )


# -- reading ---------------------------------------------------------------------------------
def _layer(conn: Connection, repo: str, layer: str, table: str, path: str):
    """One layer's (path, hash, size) rows at or under ``path``, as plain tuples (a million
    ``sqlite3.Row`` objects cost more than the query)."""
    lo, hi = subtree_bounds(path)
    cur = conn.cursor()
    cur.row_factory = None
    return cur.execute(
        f"SELECT path, hash, size FROM {table} WHERE repo = ? AND commit_id = ? "
        "AND (path = ? OR (path >= ? AND path < ?)) ORDER BY path",
        (repo, layer, path, lo, hi),
    )


def walk(conn: Connection, repo: str, cid: str, path: str = "/") -> Iterator[tuple[str, str, int]]:
    """(path, hash, size) of every file at or under ``path``, in path order.

    The chain's farthest layer (the whole tree at its root, the big one) is streamed; the
    nearer layers (changes since it) are read into memory and merged into that stream, the
    nearest entry per path winning. Memory is bounded by those changes, not by the tree."""
    chain = _chain(conn, repo, cid)
    if not chain:  # no manifest yet: an open commit reads as empty
        return
    *upper, (root, root_table) = chain
    over: dict[str, tuple[str | None, int | None]] = {}
    for layer, table in reversed(upper):
        over.update((p, (h, s)) for p, h, s in _layer(conn, repo, layer, table, path))
    if not over:
        yield from (row for row in _layer(conn, repo, root, root_table, path) if row[1] is not None)
        return
    changed = sorted(over)
    i, n = 0, len(changed)
    for p, h, s in _layer(conn, repo, root, root_table, path):
        while i < n and changed[i] < p:
            q = changed[i]
            i += 1
            qh, qs = over[q]
            if qh is not None:
                yield q, qh, qs
        if i < n and changed[i] == p:
            i += 1
            h, s = over[p]
        if h is not None:
            yield p, h, s
    for q in changed[i:]:
        qh, qs = over[q]
        if qh is not None:
            yield q, qh, qs


def hashes(conn: Connection, repo: str, cid: str, path: str = "/") -> dict[str, str]:
    return {p: h for p, h, _s in walk(conn, repo, cid, path)}


def lookup(conn: Connection, repo: str, cid: str, path: str) -> tuple[str, int] | None:
    """(hash, size) of one file of a commit, or None."""
    for layer, table in _chain(conn, repo, cid):
        r = conn.execute(
            f"SELECT hash, size FROM {table} WHERE repo = ? AND commit_id = ? AND path = ?",
            (repo, layer, path),
        ).fetchone()
        if r is not None:
            return None if r[0] is None else (r[0], r[1])
    return None


def lookup_many(conn: Connection, repo: str, cid: str | None, paths: Iterable[str]) -> dict:
    """{path: (hash, size) or None} of many paths of a commit, a set operation per layer."""
    found: dict[str, Entry] = {}
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS mf_paths(path TEXT PRIMARY KEY)")
    conn.execute("DELETE FROM mf_paths")
    conn.executemany("INSERT OR IGNORE INTO mf_paths(path) VALUES (?)", ((p,) for p in paths))
    for layer, table in _chain(conn, repo, cid):
        for p, h, s in conn.execute(
            f"SELECT f.path, f.hash, f.size FROM mf_paths t JOIN {table} f "
            "ON f.repo = ? AND f.commit_id = ? AND f.path = t.path",
            (repo, layer),
        ).fetchall():
            if p not in found:
                found[p] = None if h is None else (h, s)
    result = {r[0]: found.get(r[0]) for r in conn.execute("SELECT path FROM mf_paths")}
    conn.execute("DELETE FROM mf_paths")
    return result


def _dirs_among(conn: Connection, repo: str, cid: str | None, paths: Iterable[str]) -> set[str]:
    """Of these paths, those that may be directories of a commit (checked exactly later)."""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS mf_paths(path TEXT PRIMARY KEY)")
    conn.execute("DELETE FROM mf_paths")
    conn.executemany("INSERT OR IGNORE INTO mf_paths(path) VALUES (?)", ((p,) for p in paths))
    out: set[str] = set()
    for layer, table in _chain(conn, repo, cid):
        out.update(
            r[0]
            for r in conn.execute(
                f"SELECT t.path FROM mf_paths t WHERE EXISTS (SELECT 1 FROM {table} f "
                "WHERE f.repo = ? AND f.commit_id = ? AND f.path >= t.path || '/' "
                "AND f.path < t.path || '0' AND f.hash IS NOT NULL)",
                (repo, layer),
            )
        )
    conn.execute("DELETE FROM mf_paths")
    return out


def size(conn: Connection, repo: str, cid: str) -> int:
    """Bytes of a commit's files (kept with the manifest, so O(1))."""
    meta = _meta(conn, repo, cid)
    return 0 if meta is None else meta[5]


def count(conn: Connection, repo: str, cid: str) -> int:
    meta = _meta(conn, repo, cid)
    return 0 if meta is None else meta[4]


def changes(conn: Connection, repo: str, cid: str, path: str = "/") -> list[Change]:
    """What a commit changed against its parent at or under ``path``, in path order."""
    meta = _meta(conn, repo, cid)
    if meta is None:
        return []
    lo, hi = subtree_bounds(path)
    return [
        Change(r[0], None if r[3] is None else (r[3], r[4]), None if r[1] is None else (r[1], r[2]))
        for r in conn.execute(
            "SELECT path, hash, size, old_hash, old_size FROM file_changes WHERE repo = ? "
            "AND commit_id = ? AND (path = ? OR (path >= ? AND path < ?)) ORDER BY path",
            (repo, cid, path, lo, hi),
        )
    ]


def delta_parent(conn: Connection, repo: str, cid: str) -> str | None:
    """The commit ``changes`` are against: the parent, or None when it is stored whole."""
    meta = _meta(conn, repo, cid)
    return None if meta is None else meta[0]


def history(conn: Connection, repo: str, cid: str, path: str = "/") -> Iterator[tuple]:
    """(commit, Change) of every change at or under ``path`` in the ancestry of ``cid``,
    newest commit first: one query over the chain of ``delta_parent``."""
    lo, hi = subtree_bounds(path)
    cur = conn.execute(
        "WITH RECURSIVE anc(cid, d) AS ("
        " SELECT ?2, 0 UNION ALL SELECT m.delta_parent, anc.d + 1 FROM manifest_commits m"
        " JOIN anc ON m.repo = ?1 AND m.commit_id = anc.cid WHERE m.delta_parent IS NOT NULL)"
        " SELECT anc.cid, f.path, f.hash, f.size, f.old_hash, f.old_size FROM anc"
        " JOIN file_changes f ON f.repo = ?1 AND f.commit_id = anc.cid"
        " AND (f.path = ?3 OR (f.path >= ?4 AND f.path < ?5)) ORDER BY anc.d, f.path",
        (repo, cid, path, lo, hi),
    )
    for c, p, h, s, oh, os_ in cur:
        yield c, Change(p, None if oh is None else (oh, os_), None if h is None else (h, s))


def ancestry(conn: Connection, repo: str, cid: str) -> list[str]:
    """The commit and its ancestors along ``delta_parent``, newest first."""
    return [
        r[0]
        for r in conn.execute(
            "WITH RECURSIVE anc(cid, d) AS ("
            " SELECT ?2, 0 UNION ALL SELECT m.delta_parent, anc.d + 1 FROM manifest_commits m"
            " JOIN anc ON m.repo = ?1 AND m.commit_id = anc.cid WHERE m.delta_parent IS NOT NULL)"
            " SELECT cid FROM anc ORDER BY d",
            (repo, cid),
        )
    ]


# -- writing ---------------------------------------------------------------------------------
def _store_changes(
    conn: Connection,
    repo: str,
    cid: str,
    parent: str | None,
    staged: dict[str, Entry],
    known: dict[str, Entry] | None = None,
) -> None:
    """Set the commit's changes for these paths to ``staged`` (None: deleted), against the
    parent's files (``known``: those already fetched); a path set back to its parent's value
    is no change."""
    if not staged:
        return
    old = dict(known or {})
    missing = [p for p in staged if p not in old]
    if missing and parent is not None:
        old.update(lookup_many(conn, repo, parent, missing))
    drop, rows = [], []
    for p, new in staged.items():
        before = old.get(p)
        if new == before:
            drop.append((repo, cid, p))
        else:
            rows.append((repo, cid, p, *(new or (None, None)), *(before or (None, None))))
    conn.executemany("DELETE FROM file_changes WHERE repo = ? AND commit_id = ? AND path = ?", drop)
    conn.executemany(
        "INSERT OR REPLACE INTO file_changes(repo, commit_id, path, hash, size, old_hash, "
        "old_size) VALUES (?,?,?,?,?,?,?)",
        rows,
    )


def copy(conn: Connection, repo: str, src: str, dst: str) -> None:
    """Make ``dst`` hold exactly the files of ``src`` (its parent, usually: no rows at all)."""
    meta = _open(conn, repo, dst)
    conn.execute("DELETE FROM file_changes WHERE repo = ? AND commit_id = ?", (repo, dst))
    if src != meta[0]:
        want = {p: (h, s) for p, h, s in walk(conn, repo, src)}
        staged: dict[str, Entry] = dict.fromkeys(
            (p for p, _h, _s in walk(conn, repo, meta[0]) if p not in want) if meta[0] else ()
        )
        staged.update(want)
        _store_changes(conn, repo, dst, meta[0], staged)
    _seal(conn, repo, dst)


def clear(conn: Connection, repo: str, cid: str) -> None:
    """Make a commit hold no files (tombstones for its parent's)."""
    meta = _open(conn, repo, cid)
    conn.execute("DELETE FROM file_changes WHERE repo = ? AND commit_id = ?", (repo, cid))
    if meta[0] is not None:
        conn.executemany(
            "INSERT INTO file_changes(repo, commit_id, path, hash, size, old_hash, old_size) "
            "VALUES (?,?,?,NULL,NULL,?,?)",
            ((repo, cid, p, h, s) for p, h, s in list(walk(conn, repo, meta[0]))),
        )
    _seal(conn, repo, cid)


def write(conn: Connection, repo: str, cid: str, rows: Iterable[tuple[str, str, int]]) -> None:
    """Set files (path, hash, size) of a commit, replacing any at the same paths."""
    meta = _open(conn, repo, cid)
    _store_changes(conn, repo, cid, meta[0], {p: (h, s) for p, h, s in rows})
    _seal(conn, repo, cid)


def apply(conn: Connection, repo: str, cid: str, ops: Iterable[Op], *, branch: str) -> None:
    """Apply staged puts and deletes, in order, to a commit that starts as its parent's copy.

    The ops are checked in memory against the parent's files, fetched for the paths they name
    in a few set queries, so a put of a million files is not a million queries."""
    ops = list(ops)
    meta = _open(conn, repo, cid)
    parent = meta[0]
    # What the ops start from: this commit's files so far (its changes on top of its parent).
    base_changes = {c.path: c.new for c in changes(conn, repo, cid)}
    view = _View(conn, repo, cid, parent, base_changes, ops)
    for op in ops:
        if op[0] == "delete":
            view.delete(op[1], branch)
        else:
            view.put(op[1], (op[2], op[3]))
    conn.execute("DELETE FROM file_changes WHERE repo = ? AND commit_id = ?", (repo, cid))
    _store_changes(conn, repo, cid, parent, view.staged, view.parent_files)
    _seal(conn, repo, cid)


class _View:
    """A commit's files while ops apply: the parent's (fetched for the paths the ops name)
    under the staged changes."""

    def __init__(self, conn, repo, cid, parent, staged: dict[str, Entry], ops: list[Op]):
        self.conn, self.repo, self.cid, self.parent = conn, repo, cid, parent
        self.staged = staged
        named = {op[1] for op in ops}
        ancestors = {a for p in named for a in _ancestors(p)}
        self.parent_files = lookup_many(conn, repo, parent, named | ancestors) if parent else {}
        self.maybe_dirs = _dirs_among(conn, repo, parent, named) if parent else set()
        self.under: Counter[str] = Counter()  # live staged files under each directory
        for p, e in staged.items():
            if e is not None:
                self.under.update(_ancestors(p))

    def is_file(self, p: str) -> bool:
        if p in self.staged:
            return self.staged[p] is not None
        return self.parent_files.get(p) is not None

    def _parent_under(self, p: str) -> list[str]:
        """The parent's files under directory ``p`` (kept in ``parent_files`` as found)."""
        if p not in self.maybe_dirs:
            return []
        found = []
        for f, h, s in walk(self.conn, self.repo, self.parent, p):
            if f != p:
                self.parent_files[f] = (h, s)
                found.append(f)
        return found

    def _set(self, p: str, entry: Entry) -> None:
        was_live = self.staged.get(p) is not None
        self.staged[p] = entry
        if was_live and entry is None:
            self.under.subtract(_ancestors(p))
        elif not was_live and entry is not None:
            self.under.update(_ancestors(p))

    def is_dir(self, p: str) -> bool:
        if self.under[p] > 0:
            return True
        return any(f not in self.staged for f in self._parent_under(p))

    def put(self, path: str, entry: Entry) -> None:
        if self.is_dir(path):
            raise InvalidPath(f"cannot put file {path} in {self.repo}: {path} is a directory there")
        for a in _ancestors(path):
            if self.is_file(a):
                raise InvalidPath(f"cannot put file {path} in {self.repo}: {a} is a file there")
        self._set(path, entry)

    def delete(self, path: str, branch: str) -> None:
        gone = []
        if self.is_file(path):
            gone.append(path)
        elif self.is_dir(path):
            lo, hi = subtree_bounds(path)
            gone += [f for f in self._parent_under(path) if f not in self.staged]
            gone += [f for f, e in self.staged.items() if e is not None and lo <= f < hi]
        if not gone:
            raise FileNotFound(
                f"no file or directory {path} in {self.repo}@{branch}; nothing was deleted"
            )
        for f in gone:
            self._set(f, None)


def _ancestors(path: str) -> tuple[str, ...]:
    """The directories above a path, outermost first ('/a/b/c' -> ('/a', '/a/b'))."""
    return _dir_chain(path.rsplit("/", 1)[0])


@functools.lru_cache(maxsize=65536)
def _dir_chain(directory: str) -> tuple[str, ...]:
    if not directory:
        return ()
    return (*_dir_chain(directory.rsplit("/", 1)[0]), directory)


# -- maintenance -----------------------------------------------------------------------------
def referenced(conn: Connection) -> set[str]:
    """Every blob some commit holds (each file of a commit was put by it or an ancestor)."""
    return {
        r[0] for r in conn.execute("SELECT DISTINCT hash FROM file_changes WHERE hash IS NOT NULL")
    }


def problems(conn: Connection) -> list[str]:
    """Manifests that disagree with their commits, their parents or their own layers."""
    out = [
        f"commit {r[0]}@{r[1]} is finished but has no manifest"
        for r in conn.execute(
            "SELECT c.repo, c.id FROM commits c LEFT JOIN manifest_commits m "
            "ON m.repo = c.repo AND m.commit_id = c.id "
            "WHERE c.finished IS NOT NULL AND m.commit_id IS NULL"
        )
    ]
    out += [
        f"commit {r[0]}@{r[1]} records {r[2]} bytes but its files sum to {r[3]}"
        for r in conn.execute(
            "SELECT c.repo, c.id, c.size_bytes, m.size_bytes FROM commits c "
            "JOIN manifest_commits m ON m.repo = c.repo AND m.commit_id = c.id "
            "WHERE c.finished IS NOT NULL AND c.size_bytes != m.size_bytes"
        )
    ]
    # Each manifest's totals follow from its parent's and its own changes.
    out += [
        f"manifest of {r[0]}@{r[1]} holds {r[2]} files of {r[3]} bytes, but its parent and its "
        f"changes make {r[4]} files of {r[5]} bytes"
        for r in conn.execute(
            "SELECT m.repo, m.commit_id, m.files, m.size_bytes, "
            "COALESCE(p.files, 0) + COALESCE(d.files, 0), "
            "COALESCE(p.size_bytes, 0) + COALESCE(d.bytes, 0) FROM manifest_commits m "
            "LEFT JOIN manifest_commits p ON p.repo = m.repo AND p.commit_id = m.delta_parent "
            "LEFT JOIN (SELECT repo, commit_id, SUM((hash IS NOT NULL) - (old_hash IS NOT NULL)) "
            "AS files, SUM(COALESCE(size, 0) - COALESCE(old_size, 0)) AS bytes FROM file_changes "
            "GROUP BY repo, commit_id) d ON d.repo = m.repo AND d.commit_id = m.commit_id "
            "WHERE m.files != COALESCE(p.files, 0) + COALESCE(d.files, 0) "
            "OR m.size_bytes != COALESCE(p.size_bytes, 0) + COALESCE(d.bytes, 0)"
        )
    ]
    out += [
        f"manifest of {r[0]}@{r[1]} at depth {r[2]} has base {r[3]} at depth {r[4]}, not "
        f"{r[2] & (r[2] - 1)}"
        for r in conn.execute(
            "SELECT m.repo, m.commit_id, m.depth, m.base, b.depth FROM manifest_commits m "
            "LEFT JOIN manifest_commits b ON b.repo = m.repo AND b.commit_id = m.base "
            "WHERE m.depth > 0 AND (b.depth IS NULL OR b.depth != (m.depth & (m.depth - 1)))"
        )
    ]
    # The layers really resolve to those totals at every branch head.
    for repo, cid, files, nbytes in conn.execute(
        "SELECT DISTINCT m.repo, m.commit_id, m.files, m.size_bytes FROM branches b "
        "JOIN manifest_commits m ON m.repo = b.repo AND m.commit_id = b.head"
    ).fetchall():
        n, total = 0, 0
        for _p, _h, s in walk(conn, repo, cid):
            n, total = n + 1, total + s
        if (n, total) != (files, nbytes):
            out.append(
                f"manifest of {repo}@{cid} resolves to {n} files of {total} bytes, but records "
                f"{files} files of {nbytes} bytes"
            )
    return out
