"""Stores of the old format open in the new code: migrated once, atomically, nothing lost.

``data/legacy_store.tar.gz`` was written by the code before migrations were recorded
(``data/make_legacy_store.py`` says how); these tests read its old tables directly, as the
ground truth, then open it with today's store.
"""

from __future__ import annotations

import shutil
import sqlite3
import tarfile
from pathlib import Path

import pytest

from pipelines.embedded.db import Database, Migration, MigrationFailed
from pipelines.embedded.store import COMPONENTS, EmbeddedStore

LEGACY = Path(__file__).parent / "data" / "legacy_store.tar.gz"


@pytest.fixture
def legacy(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("TULIP_NO_AUTORUN", "1")
    root = tmp_path / "legacy"
    with tarfile.open(LEGACY) as tar:
        tar.extractall(root, filter="data")
    return root


def old_manifests(root: Path) -> dict[tuple[str, str], dict[str, tuple[str, int]]]:
    """Every commit's files as the old format recorded them."""
    db = sqlite3.connect(root / "tulip.db")
    out: dict[tuple[str, str], dict[str, tuple[str, int]]] = {}
    for repo, cid in db.execute("SELECT repo, id FROM commits WHERE finished IS NOT NULL"):
        out[(repo, cid)] = {}
    for repo, cid, path, digest, size in db.execute(
        "SELECT repo, commit_id, path, hash, size FROM files"
    ):
        out[(repo, cid)][path] = (digest, size)
    db.close()
    return out


def test_the_full_copies_become_changes_once(legacy):
    before = old_manifests(legacy)
    parents = dict(
        ((r, c), p)
        for r, c, p in sqlite3.connect(legacy / "tulip.db").execute(
            "SELECT repo, id, parent FROM commits"
        )
    )
    old_rows = sum(len(files) for files in before.values())
    store = EmbeddedStore(legacy)
    conn = store.db.conn
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "files" not in tables and {"file_changes", "manifest_commits"} <= tables
    for (repo, cid), files in before.items():
        parent = before.get((repo, parents[(repo, cid)]), {})
        changed = {p for p in set(files) | set(parent) if files.get(p) != parent.get(p)}
        stored = {
            r[0]
            for r in conn.execute(
                "SELECT path FROM file_changes WHERE repo = ? AND commit_id = ?", (repo, cid)
            )
        }
        assert stored == changed, f"{repo}@{cid}"
    new_rows = conn.execute("SELECT COUNT(*) FROM file_changes").fetchone()[0]
    assert new_rows < old_rows
    assert store.fsck() == []
    store.close()


def recorded(root: Path) -> list[tuple[str, int]]:
    db = sqlite3.connect(root / "tulip.db")
    try:
        return db.execute(
            "SELECT component, number FROM schema_migrations ORDER BY component, number"
        ).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        db.close()


def test_a_legacy_store_migrates_once_and_keeps_every_commit_and_file(legacy):
    before = old_manifests(legacy)
    assert len(before) >= 10  # user, spec and output commits
    store = EmbeddedStore(legacy)
    migrated = recorded(legacy)
    assert ("store", 1) in migrated and ("outbox", 1) in migrated
    for (repo, cid), files in before.items():
        got = {f.path: (f.hash, f.size) for f in store.walk_files(repo, cid)}
        assert got == files, f"{repo}@{cid}"
        assert store.inspect_commit(repo, cid).size_bytes == sum(s for _h, s in files.values())
    assert len(store.list_commits("photos", "master")) == 5
    assert store.get_file("photos", store.resolve("photos@master").id, "/daisy/1.jpg") == (
        b"daisy 1, retaken"
    )
    jobs = store.list_jobs("Copy")
    assert jobs[0].state == "failure" and len(jobs) == 5
    assert {d.state for d in store.list_datums("Copy", jobs[1].id)} <= {"success", "skipped"}
    assert [e.type for e in store.outbox.newest()] == ["job.failed"]
    assert store.fsck(verify_content=True) == []
    store.close()
    # Opened again: nothing left to do, and nothing is written.
    assert EmbeddedStore(legacy).db.migrate(COMPONENTS) == []
    assert recorded(legacy) == migrated


def test_the_alert_tables_of_a_legacy_store_are_adopted_by_the_alerts_code(legacy):
    from reports.alerts.tables import AlertTables

    store = EmbeddedStore(legacy)
    [event] = store.outbox.newest()
    tables = AlertTables(store.db)
    [delivery] = tables.of_event(event.id)
    assert (delivery.endpoint, delivery.state, delivery.attempts) == ("hook", "retrying", 2)
    assert ("alerts", 1) in recorded(legacy)
    store.close()


def test_a_failing_migration_leaves_the_store_exactly_as_it_was(legacy):
    db_file = legacy / "tulip.db"
    pristine = legacy.parent / "pristine.db"
    shutil.copy(db_file, pristine)

    def explode(conn):
        conn.execute("CREATE TABLE half_done (x)")
        raise sqlite3.OperationalError("disk I/O error (simulated)")

    broken = {**COMPONENTS, "store": [*COMPONENTS["store"], Migration("explodes", explode)]}
    with pytest.raises(MigrationFailed, match="left as it was"):
        Database(db_file).migrate(broken)
    assert recorded(legacy) == []
    db = sqlite3.connect(db_file)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 2
    assert db.execute("SELECT name FROM sqlite_master WHERE name = 'half_done'").fetchall() == []
    assert db.execute("SELECT COUNT(*) FROM files").fetchone()[0] > 0
    db.close()
    EmbeddedStore(legacy).close()  # and the real migration still works afterwards
    assert ("store", 1) in recorded(legacy)


def test_a_store_from_a_newer_tulip_or_not_a_store_is_refused_clearly(tmp_path, legacy):
    store = EmbeddedStore(legacy)
    with store.db.transaction() as conn:
        conn.execute(
            "INSERT INTO schema_migrations(component, number, name, applied) "
            "VALUES ('store', 99, 'from the future', 0)"
        )
    store.close()
    with pytest.raises(MigrationFailed, match="newer Tulip"):
        EmbeddedStore(legacy)
    odd = tmp_path / "odd"
    odd.mkdir()
    conn = sqlite3.connect(odd / "tulip.db")
    conn.execute("PRAGMA user_version = 7")
    conn.close()
    with pytest.raises(MigrationFailed, match="not a Tulip store"):
        EmbeddedStore(odd)
