"""What a review's fix commit needs from a writer, on both backends: moves by reference (a
copy and a delete, no bytes sent), metadata that lands with the commit, and a compare-and-set
on the branch head (``expect_head``) that refuses a branch that moved."""

from __future__ import annotations

import pytest

from pipelines.backend import Backend
from pipelines.errors import BranchMoved, InvalidPath


@pytest.fixture(params=["embedded", "pachyderm"])
def backend(request, tmp_path, monkeypatch):
    if request.param == "embedded":
        from pipelines.embedded.store import EmbeddedStore

        monkeypatch.setenv("TULIP_NO_AUTORUN", "1")
        b = EmbeddedStore(tmp_path / "store")
        yield b
        b.close()
        return
    from pipelines.pachyderm import PACHD_ADDRESS_ENV, PachydermBackend
    from tests.pachyderm_double import PachdProtocolDouble

    with PachdProtocolDouble(auto_run=False) as pachd:
        monkeypatch.setenv(PACHD_ADDRESS_ENV, pachd.address)
        b = PachydermBackend.from_environment()
        yield b
        b.close()


def seeded(b: Backend) -> str:
    b.create_repo("photos")
    with b.start_commit("photos", description="first") as w:
        w.put_bytes("/orchids/1.jpg", b"one")
        w.put_bytes("/orchids/sub/2.jpg", b"two")
        w.put_bytes("/daisy/3.jpg", b"three")
    return w.id


def files(b: Backend, commit: str) -> dict[str, bytes]:
    return {f.path: b.get_file("photos", commit, f.path) for f in b.walk_files("photos", commit)}


def test_a_move_is_a_copy_and_a_delete_of_stored_content(backend):
    first = seeded(backend)
    stored = {f.path: f for f in backend.walk_files("photos", first)}
    with backend.start_commit("photos", description="rename") as w:
        for path in ("/orchids/1.jpg", "/orchids/sub/2.jpg"):
            w.copy("/tulips" + path.removeprefix("/orchids"), stored[path])
        w.delete("/orchids")
    assert files(backend, w.id) == {
        "/daisy/3.jpg": b"three",
        "/tulips/1.jpg": b"one",
        "/tulips/sub/2.jpg": b"two",
    }
    after = {f.path: f.hash for f in backend.walk_files("photos", w.id)}
    assert after["/tulips/1.jpg"] == stored["/orchids/1.jpg"].hash  # the same content
    assert files(backend, first)["/orchids/1.jpg"] == b"one"  # history is kept


def test_copy_sends_no_bytes_on_the_embedded_store(tmp_path, monkeypatch):
    from pipelines.embedded.store import EmbeddedStore

    monkeypatch.setenv("TULIP_NO_AUTORUN", "1")
    b = EmbeddedStore(tmp_path / "store")
    first = seeded(b)
    blobs = set(b.objects.digests())
    calls = []
    monkeypatch.setattr(b.objects, "put_bytes", lambda *a: calls.append(a))
    monkeypatch.setattr(b.objects, "put_file", lambda *a: calls.append(a))
    with b.start_commit("photos") as w:
        w.copy("/tulips/1.jpg", b.inspect_file("photos", first, "/orchids/1.jpg"))
    assert calls == [] and set(b.objects.digests()) == blobs
    assert b.get_file("photos", w.id, "/tulips/1.jpg") == b"one"
    b.close()


def test_a_directory_cannot_be_copied_as_a_file(backend):
    first = seeded(backend)
    folder = backend.inspect_file("photos", first, "/orchids")
    with pytest.raises(InvalidPath, match="not a file"), backend.start_commit("photos") as w:
        w.copy("/tulips/x", folder)


def test_metadata_lands_with_the_commit(backend):
    seeded(backend)
    with backend.start_commit("photos", description="fix") as w:
        w.delete("/daisy/3.jpg")
        w.set_metadata({"tulip.review": "r1", "tulip.review.by": "alice"})
    meta = backend.inspect_commit("photos", w.id).metadata
    assert meta["tulip.review"] == "r1" and meta["tulip.review.by"] == "alice"


def test_a_commit_for_another_head_is_refused_and_nothing_lands(backend):
    first = seeded(backend)
    with backend.start_commit("photos", description="meanwhile") as w:
        w.put_bytes("/daisy/4.jpg", b"four")
    moved = w.id
    with (
        pytest.raises(BranchMoved, match=f"head is {moved}, not {first}"),
        backend.start_commit("photos", description="fix", expect_head=first) as w,
    ):
        w.delete("/orchids")
        w.set_metadata({"tulip.review": "r1"})
    assert backend.inspect_branch("photos", "master").head == moved
    assert [c.id for c in backend.list_commits("photos")] == [moved, first]
    with backend.start_commit("photos", description="fix", expect_head=moved) as w:
        w.delete("/orchids")
    assert backend.inspect_commit("photos", w.id).parent == moved
