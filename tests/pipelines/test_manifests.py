"""Manifests that share structure: a commit stores its changes, and every reader sees the
same files as if each commit held a full copy (the model these tests keep in a dict)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines.embedded import manifests
from pipelines.embedded.store import EmbeddedStore
from pipelines.errors import FileNotFound, InvalidPath

TULIP = [sys.executable, "-m", "tulip.cli.main"]


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("TULIP_NO_AUTORUN", "1")
    s = EmbeddedStore(tmp_path / "store")
    s.create_repo("r")
    yield s
    s.close()


def rows(store, table: str, cid: str) -> int:
    return store.db.execute(
        f"SELECT COUNT(*) FROM {table} WHERE repo = 'r' AND commit_id = ?", (cid,)
    ).fetchone()[0]


def random_history(store, n_commits: int, seed: int = 7):
    """Commits of random puts, overwrites and deletes; returns [(commit id, model)]."""
    rng = random.Random(seed)
    model: dict[str, bytes] = {}
    history = []
    for i in range(n_commits):
        with store.start_commit("r") as w:
            for _ in range(rng.randint(1, 6)):
                roll = rng.random()
                if model and roll < 0.25:
                    victim = rng.choice(sorted(model))
                    w.delete(victim)
                    del model[victim]
                elif model and roll < 0.45:
                    victim = rng.choice(sorted(model))
                    model[victim] = f"v{i}-{rng.random()}".encode()
                    w.put_bytes(victim, model[victim])
                else:
                    path = f"/d{rng.randint(0, 4)}/f{rng.randint(0, 40)}"
                    model[path] = f"{i}".encode()
                    w.put_bytes(path, model[path])
        history.append((w.id, dict(model)))
    return history


def test_every_commit_of_a_long_history_reads_as_its_full_copy(store):
    history = random_history(store, 70)
    conn = store.db.conn
    for cid, model in history:
        got = {f.path: store.objects.read(f.hash) for f in store.walk_files("r", cid)}
        assert got == model, cid
        assert store.inspect_commit("r", cid).size_bytes == sum(len(v) for v in model.values())
        # One folder, and single lookups, through the same layers.
        assert {f.path for f in store.walk_files("r", cid, "/d2")} == {
            p for p in model if p.startswith("/d2/")
        }
        for p in list(model)[:3]:
            assert manifests.lookup(conn, "r", cid, p) is not None
        assert manifests.lookup(conn, "r", cid, "/d9/none") is None
    # 70 commits deep, a commit reads through at most log2(depth) + 1 layers.
    deepest = history[-1][0]
    assert len(manifests._chain(conn, "r", deepest)) <= 7
    assert store.fsck() == []


def test_history_readers_agree_with_the_full_copies(store):
    history = random_history(store, 40, seed=11)
    ids = [cid for cid, _m in history]
    models = dict(history)
    parent = {ids[i]: (ids[i - 1] if i else None) for i in range(len(ids))}
    head = ids[-1]
    # introduced_by: walking back, the oldest commit since which the file is unchanged.
    expected = {}
    for p, content in models[head].items():
        cid = head
        while parent[cid] is not None and models[parent[cid]].get(p) == content:
            cid = parent[cid]
        expected[p] = cid
    assert store.introduced_by("r", head, [*models[head], "/gone"]) == expected
    # find commit of one folder: every commit whose files there differ from its parent's.
    under = lambda m: {p: v for p, v in m.items() if p.startswith("/d1/")}  # noqa: E731
    want = [
        c
        for c in reversed(ids)
        if under(models[c]) != (under(models[parent[c]]) if parent[c] else {})
    ]
    found = store.find_commits("r", "master", "/d1")
    assert [pc.commit.id for pc in found] == want
    for pc in found:
        before = under(models[parent[pc.commit.id]]) if parent[pc.commit.id] else {}
        after = under(models[pc.commit.id])
        assert pc.files == sorted(
            p for p in set(before) | set(after) if before.get(p) != after.get(p)
        )
        assert pc.change == ("added" if not before else "deleted" if not after else "modified")
    # diff file against the parent (stored changes) and against an older commit (two walks).
    for new, old in [(ids[-1], ids[-2]), (ids[-1], ids[5])]:
        changes = {c.path: c.change for c in store.diff_files("r", new, old)}
        a, b = models[new], models[old]
        assert changes == {
            p: "added" if p not in b else "deleted" if p not in a else "modified"
            for p in set(a) | set(b)
            if a.get(p) != b.get(p)
        }


def test_a_commit_of_one_percent_more_stores_only_those_files(store, tmp_path):
    tree = tmp_path / "tree"
    for i in range(1000):
        (tree / f"c{i % 10}").mkdir(parents=True, exist_ok=True)
        (tree / f"c{i % 10}" / f"{i}.txt").write_bytes(b"%d" % i)
    with store.start_commit("r") as w:
        w.put_tree("/", tree)
    first = w.id
    with store.start_commit("r") as w:
        for i in range(10):
            w.put_bytes(f"/new/{i}.txt", b"new %d" % i)
        w.put_bytes("/c3/3.txt", b"3")  # the same content again: no change
    assert rows(store, "file_changes", w.id) == 10
    assert rows(store, "file_layers", w.id) == 0  # its base is its parent
    assert len(list(store.walk_files("r", w.id))) == 1010
    # The next commit's base skips to the first one: its layer holds both commits' changes.
    with store.start_commit("r") as w2:
        w2.delete("/c0")
    assert rows(store, "file_changes", w2.id) == 100
    assert rows(store, "file_layers", w2.id) == 110
    assert manifests._chain(store.db.conn, "r", w2.id) == [
        (w2.id, "file_layers"),
        (first, "file_changes"),
    ]
    assert len(list(store.walk_files("r", w2.id))) == 910
    assert [c.change for c in store.diff_files("r", w2.id, w.id)] == ["deleted"] * 100


def test_puts_and_deletes_apply_in_order_within_one_commit(store):
    with store.start_commit("r") as w:
        w.put_bytes("/a/b", b"1")
        w.put_bytes("/keep", b"k")
    with store.start_commit("r") as w:
        w.delete("/a")  # a directory of the parent
        w.put_bytes("/a", b"now a file")
        w.put_bytes("/x/y", b"2")
        w.delete("/x/y")
        w.put_bytes("/x", b"x is a file now")
    files = {f.path: store.objects.read(f.hash) for f in store.walk_files("r", w.id)}
    assert files == {"/a": b"now a file", "/keep": b"k", "/x": b"x is a file now"}
    with pytest.raises(InvalidPath, match="/a is a file there"), store.start_commit("r") as w:
        w.put_bytes("/a/c", b"3")
    with pytest.raises(InvalidPath, match="/d is a directory there"), store.start_commit("r") as w:
        w.put_bytes("/d/e", b"3")
        w.put_bytes("/d", b"3")
    with pytest.raises(FileNotFound, match="nothing was deleted"), store.start_commit("r") as w:
        w.delete("/nope")
    assert len(store.list_commits("r")) == 2
    assert store.fsck() == []


def test_fsck_finds_a_manifest_that_disagrees_with_its_changes(store):
    random_history(store, 5)
    head = store.inspect_branch("r", "master").head
    store.db.execute(
        "UPDATE file_changes SET size = size + 1 WHERE repo = 'r' AND commit_id = ? "
        "AND hash IS NOT NULL",
        (head,),
    )
    problems = store.fsck()
    assert any("its parent and its changes make" in p for p in problems), problems


def make_tiny_tree(root: Path, n: int) -> Path:
    for i in range(n):
        if i % 1000 == 0:
            (root / f"c{i // 1000:03d}").mkdir(parents=True)
        (root / f"c{i // 1000:03d}" / f"{i:06d}").write_bytes(b"%d" % i)
    return root


# A put of 100k tiny files of 100 distinct contents, staged as copies of those 100 blobs (so
# the work is the metadata, which is what changed, and not 100k temporary files on a slow
# disk), that says when the metadata transaction begins. A small page cache makes the
# transaction spill into the write-ahead log early, so the test sees it under way.
BIG_PUT = """
import sys
from pipelines.embedded.store import EmbeddedStore
from pipelines.info import FileInfo
s = EmbeddedStore(sys.argv[1])
s.db.conn.execute("PRAGMA cache_size = 50")
blobs = [s.objects.put_bytes(b"%d" % k) for k in range(100)]
with s.start_commit("r") as w:
    for i in range(100_000):
        path = f"/new/c{i // 1000:03d}/{i:06d}"
        digest, size = blobs[i % 100]
        w.copy(path, FileInfo(path=path, type="file", size=size, hash=digest, commit="", repo="r"))
    print("committing", flush=True)
print("committed", flush=True)
"""


@pytest.mark.slow
def test_kill_9_half_way_through_a_put_of_100k_files_leaves_the_store_as_it_was(tmp_path):
    root = tmp_path / "store"
    env = {**os.environ, "TULIP_NO_AUTORUN": "1"}
    store = EmbeddedStore(root)
    store.create_repo("r")
    with store.start_commit("r") as w:
        for i in range(2000):
            w.put_bytes(f"/old/{i}", b"old %d" % i)
    before = w.id
    store.close()
    wal = Path(str(root / "tulip.db") + "-wal")
    proc = subprocess.Popen(
        [sys.executable, "-c", BIG_PUT, str(root)], env=env, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "committing"
    start = wal.stat().st_size if wal.exists() else 0
    deadline = time.monotonic() + 60
    while (wal.stat().st_size if wal.exists() else 0) < start + 2**20:  # 1 MiB of pages
        assert proc.poll() is None and time.monotonic() < deadline, "the put ended first"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert "committed" not in proc.stdout.read()
    store = EmbeddedStore(root)
    assert [c.id for c in store.list_commits("r")] == [before]
    assert store.inspect_branch("r", "master").head == before
    assert len(list(store.walk_files("r", before))) == 2000
    assert store.fsck() == []
    # The store works on: the same put, finished, is one commit of 102k files.
    store.close()
    done = subprocess.run(
        [sys.executable, "-c", BIG_PUT, str(root)], env=env, capture_output=True, text=True
    )
    assert done.stdout.split() == ["committing", "committed"], done.stderr
    store = EmbeddedStore(root)
    head = store.inspect_branch("r", "master").head
    assert store.inspect_commit("r", head).parent == before
    assert len(list(store.walk_files("r", head))) == 102_000
    assert store.fsck() == []
    store.close()


def test_two_writers_on_one_branch_serialise_and_keep_both_commits(tmp_path):
    root = tmp_path / "store"
    env = {**os.environ, "TULIP_ROOT": str(root), "TULIP_NO_AUTORUN": "1"}
    subprocess.run([*TULIP, "create", "repo", "r"], env=env, check=True, capture_output=True)
    trees = [make_tiny_tree(tmp_path / f"t{i}", 300) for i in range(2)]
    procs = [
        subprocess.Popen(
            [*TULIP, "put", "file", f"r@master:/w{i}", "-f", str(t), "-r", "-q"],
            env=env,
            stderr=subprocess.PIPE,
        )
        for i, t in enumerate(trees)
    ]
    for p in procs:
        _out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    store = EmbeddedStore(root)
    newest, oldest = store.list_commits("r")
    assert newest.parent == oldest.id and oldest.parent is None
    files = {f.path for f in store.walk_files("r", newest.id)}
    assert len(files) == 600 and {p.split("/")[1] for p in files} == {"w0", "w1"}
    assert store.fsck() == []
    store.close()
