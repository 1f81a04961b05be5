import multiprocessing
import os
import re
from pathlib import Path

import pytest

from pipelines.embedded.store import EmbeddedStore
from pipelines.errors import (
    BranchNotFound,
    CommitConflict,
    CommitNotFound,
    FileNotFound,
    InvalidPath,
    RepoExists,
    RepoNotFound,
    SourceChanged,
)
from pipelines.objects import ObjectStore
from pipelines.refs import parse_ref


def tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def put(store, repo, files: dict[str, bytes], *, deletes=(), branch="master", message=""):
    with store.start_commit(repo, branch, description=message) as w:
        for path in deletes:
            w.delete(path)
        for path, data in files.items():
            w.put_bytes(path, data)
    return store.resolve(f"{repo}@{branch}")


def paths(store, repo, commit):
    return [f.path for f in store.walk_files(repo, commit)]


def test_repos_are_created_listed_and_unique(store):
    store.create_repo("flower_photos", description="photos")
    assert [r.name for r in store.list_repos()] == ["flower_photos"]
    assert store.inspect_repo("flower_photos").branches == ["master"]
    with pytest.raises(RepoExists):
        store.create_repo("flower_photos")
    with pytest.raises(RepoNotFound, match="repos: flower_photos"):
        store.inspect_repo("flower_photo")
    with pytest.raises(InvalidPath):
        store.create_repo("bad/name")


def test_commit_shape_mirrors_pachyderm(store):
    store.create_repo("r")
    c1 = put(store, "r", {"/a.txt": b"one"})
    c2 = put(store, "r", {"/b.txt": b"two"}, message="second")
    assert re.fullmatch(r"[0-9a-f]{32}", c1.id)
    assert c1.origin == "USER" and c1.parent is None and c1.finished >= c1.started
    assert c2.parent == c1.id and c2.description == "second"
    assert c2.size_bytes == 6
    assert [c.id for c in store.list_commits("r")] == [c2.id, c1.id]  # newest first
    assert paths(store, "r", c2.id) == ["/a.txt", "/b.txt"]
    assert paths(store, "r", c1.id) == ["/a.txt"]  # old commits keep their content


def test_refs_resolve_branches_ids_and_parents(store):
    store.create_repo("r")
    c1 = put(store, "r", {"/a": b"1"})
    c2 = put(store, "r", {"/a": b"2"})
    assert store.resolve("r@master").id == c2.id
    assert store.resolve(f"r@{c1.id}").id == c1.id
    assert store.resolve("r@master^").id == c1.id
    with pytest.raises(CommitNotFound, match="first commit"):
        store.resolve("r@master^^")
    with pytest.raises(BranchNotFound, match="branches: master"):
        store.resolve("r@mastr")
    with pytest.raises(CommitNotFound):
        store.resolve("r@" + "0" * 32)


def test_identical_content_is_stored_once(store, tmp_path):
    store.create_repo("r")
    src = tree(
        tmp_path / "src", {"x/1.bin": b"same" * 1000, "y/2.bin": b"same" * 1000, "z": b"other"}
    )
    with store.start_commit("r") as w:
        assert w.put_tree("/", src) == 3
    blobs = list(store.objects.digests())
    assert len(blobs) == 2
    with store.start_commit("r") as w:
        w.put_tree("/again", src)
    assert len(list(store.objects.digests())) == 2


def test_delete_file_and_directory(store):
    store.create_repo("r")
    put(store, "r", {"/d/1": b"1", "/d/2": b"2", "/e": b"3"})
    c = put(store, "r", {}, deletes=["/d"])
    assert paths(store, "r", c.id) == ["/e"]
    with pytest.raises(FileNotFound, match="/nope"):
        put(store, "r", {}, deletes=["/nope"])
    assert store.resolve("r@master").id == c.id  # the failed delete committed nothing


def test_file_and_directory_cannot_share_a_path(store):
    store.create_repo("r")
    put(store, "r", {"/d/1": b"1"})
    with pytest.raises(InvalidPath, match="is a directory"):
        put(store, "r", {"/d": b"x"})
    with pytest.raises(InvalidPath, match="is a file"):
        put(store, "r", {"/d/1/x": b"x"})


def test_list_files_shows_children_and_sizes(store):
    store.create_repo("r")
    c = put(store, "r", {"/daisy/1.jpg": b"12", "/daisy/2.jpg": b"345", "/README": b"x"})
    top = store.list_files("r", c.id)
    assert [(f.path, f.type, f.size) for f in top] == [
        ("/README", "file", 1),
        ("/daisy/", "dir", 5),
    ]
    assert [f.path for f in store.list_files("r", c.id, "/daisy")] == [
        "/daisy/1.jpg",
        "/daisy/2.jpg",
    ]
    assert store.get_file("r", c.id, "/daisy/2.jpg") == b"345"
    with pytest.raises(FileNotFound):
        store.get_file("r", c.id, "/daisy")


def test_find_commit_gives_the_history_of_a_path(store):
    store.create_repo("r")
    c1 = put(store, "r", {"/daisy/1": b"1"})
    c2 = put(store, "r", {"/orchids/1": b"t1", "/orchids/2": b"t2"}, message="add orchids")
    put(store, "r", {"/daisy/2": b"2"})
    c4 = put(store, "r", {"/orchids/2": b"t2b"})
    c5 = put(store, "r", {}, deletes=["/orchids"])
    history = store.find_commits("r", "master", "/orchids")
    assert [(h.commit.id, h.change) for h in history] == [
        (c5.id, "deleted"),
        (c4.id, "modified"),
        (c2.id, "added"),
    ]
    assert history[-1].files == ["/orchids/1", "/orchids/2"]
    assert [h.commit.id for h in store.find_commits("r", "master", "/daisy/1")] == [c1.id]


def test_diff_between_commits(store):
    store.create_repo("r")
    c1 = put(store, "r", {"/a": b"1", "/b": b"2"})
    c2 = put(store, "r", {"/a": b"1x", "/c": b"3"}, deletes=["/b"])
    diff = {(d.path, d.change) for d in store.diff_files("r", c2.id, c1.id)}
    assert diff == {("/a", "modified"), ("/b", "deleted"), ("/c", "added")}
    assert store.diff_files("r", c2.id, c2.id) == []


def test_introduced_by_follows_content_not_just_presence(store):
    store.create_repo("r")
    c1 = put(store, "r", {"/a": b"1", "/b": b"2"})
    c2 = put(store, "r", {"/c": b"3"})
    c3 = put(store, "r", {"/a": b"1 changed"})
    got = store.introduced_by("r", c3.id, ["/a", "/b", "/c"])
    assert got == {"/a": c3.id, "/b": c1.id, "/c": c2.id}


def test_failed_writer_commits_nothing(store, tmp_path):
    store.create_repo("r")
    before = put(store, "r", {"/keep": b"1"})
    with pytest.raises(RuntimeError), store.start_commit("r") as w:
        w.put_bytes("/x", b"staged")
        raise RuntimeError("boom")
    assert store.resolve("r@master").id == before.id
    assert len(store.list_commits("r")) == 1


def test_symlink_outside_the_tree_is_refused(store, tmp_path):
    store.create_repo("r")
    src = tree(tmp_path / "src", {"a.jpg": b"a"})
    outside = tree(tmp_path / "secret", {"passwd": b"root"})
    (src / "link").symlink_to(outside / "passwd")
    with pytest.raises(InvalidPath, match="outside the tree"), store.start_commit("r") as w:
        w.put_tree("/", src)
    assert store.inspect_branch("r", "master").head is None


def test_symlink_inside_the_tree_is_followed(store, tmp_path):
    store.create_repo("r")
    src = tree(tmp_path / "src", {"a.jpg": b"a"})
    (src / "b.jpg").symlink_to(src / "a.jpg")
    with store.start_commit("r") as w:
        w.put_tree("/", src)
    c = store.resolve("r@master")
    assert store.get_file("r", c.id, "/b.jpg") == b"a"


def test_file_vanishing_during_a_recursive_put_commits_nothing(store, tmp_path, monkeypatch):
    store.create_repo("r")
    src = tree(tmp_path / "src", {f"d/{i}.jpg": bytes([i]) * 10 for i in range(5)})
    real = ObjectStore.put_file

    def flaky(self, source):
        if source.name == "1.jpg":
            (src / "d" / "3.jpg").unlink()
        return real(self, source)

    monkeypatch.setattr(ObjectStore, "put_file", flaky)
    with pytest.raises(SourceChanged, match=r"3\.jpg vanished"), store.start_commit("r") as w:
        w.put_tree("/", src)
    assert store.list_commits("r") == []


def test_delete_head_commit(store):
    store.create_repo("r")
    c1 = put(store, "r", {"/a": b"1"})
    c2 = put(store, "r", {"/b": b"2"})
    with pytest.raises(CommitConflict, match="not the head"):
        store.delete_commit("r", c1.id)
    deleted = store.delete_commit("r", c2.id)
    assert [d.id for d in deleted] == [c2.id]
    assert store.resolve("r@master").id == c1.id


def test_commit_metadata(store):
    store.create_repo("r")
    c = put(store, "r", {"/a": b"1"})
    store.set_commit_metadata("r", c.id, {"tulip.verdict": "fail"})
    store.set_commit_metadata("r", c.id, {"tulip.findings": 3})
    assert store.inspect_commit("r", c.id).metadata == {
        "tulip.verdict": "fail",
        "tulip.findings": "3",
    }


def test_fsck_finds_missing_and_corrupt_blobs_and_gc_cleans_orphans(store):
    store.create_repo("r")
    c = put(store, "r", {"/a": b"hello", "/b": b"world"})
    assert store.fsck(verify_content=True) == []
    info = store.inspect_file("r", c.id, "/a")
    path = store.objects.path(info.hash)
    os.chmod(path, 0o644)
    path.write_bytes(b"tampered")
    assert any("does not match its hash" in p for p in store.fsck(verify_content=True))
    store.objects.path(store.inspect_file("r", c.id, "/b").hash).unlink()
    assert any("referenced but missing" in p for p in store.fsck())
    orphan, _ = store.objects.put_bytes(b"nobody uses me")
    assert orphan in store.unreferenced()[0]
    removed, _ = store.gc()
    assert removed == 1 and not store.objects.has(orphan)


def _writer(root: str, worker: int, n: int) -> None:
    s = EmbeddedStore(root)
    for i in range(n):
        with s.start_commit("r") as w:
            w.put_bytes(f"/w{worker}/{i}", f"{worker}-{i}".encode())
    s.close()


def test_two_processes_write_one_store_without_corruption(store):
    store.create_repo("r")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(store.root), w, 15)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    commits = store.list_commits("r")
    assert len(commits) == 30
    # One linear history: every commit's parent is the one before it.
    chain = [c.id for c in reversed(commits)]
    assert [c.parent for c in reversed(commits)] == [None, *chain[:-1]]
    head = store.resolve("r@master")
    assert len(paths(store, "r", head.id)) == 30
    assert store.fsck(verify_content=True) == []


def test_parse_ref_and_resolve_reject_commit_of_other_repo(store):
    store.create_repo("a")
    store.create_repo("b")
    c = put(store, "a", {"/x": b"1"})
    with pytest.raises(CommitNotFound):
        store.resolve(parse_ref(f"b@{c.id}"))
