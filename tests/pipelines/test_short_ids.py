"""Short commit IDs: any unique hex prefix of 8 or more digits names a commit, in the CLI and
in the report URLs; an ambiguous one is refused naming the candidates; a branch of that name
wins."""

from __future__ import annotations

import pytest

from pipelines.embedded.store import EmbeddedStore
from pipelines.errors import AmbiguousReference, BranchNotFound, CommitNotFound


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("TULIP_NO_AUTORUN", "1")
    s = EmbeddedStore(tmp_path / "store")
    s.create_repo("r")
    for i in range(30):
        with s.start_commit("r") as w:
            w.put_bytes(f"/f{i}", str(i).encode())
    yield s
    s.close()


def test_a_unique_prefix_of_8_or_more_names_the_commit(store):
    ids = [c.id for c in store.list_commits("r")]
    for cid in ids[:5]:
        for n in (8, 12, 31):
            assert store.resolve(f"r@{cid[:n]}").id == cid
    assert store.resolve(f"r@{ids[0][:12]}^").id == ids[1]  # with ancestry, too


def test_the_prefix_query_finds_exactly_the_matching_ids(store):
    ids = sorted(c.id for c in store.list_commits("r"))
    first = ids[0][0]
    expected = [i for i in ids if i.startswith(first)][:5]
    assert store.commit_ids_with_prefix("r", first, limit=5) == expected


def test_shorter_than_8_or_unknown_is_not_found(store):
    cid = store.list_commits("r")[0].id
    with pytest.raises(BranchNotFound):
        store.resolve(f"r@{cid[:6]}")
    with pytest.raises(CommitNotFound, match="no branch or commit 'ffffffffffff' in r"):
        store.resolve("r@ffffffffffff")  # 30 random IDs: a 1 in 10^13 chance of a hit


def test_an_ambiguous_prefix_names_the_candidates(store, monkeypatch):
    a, b = (c.id for c in store.list_commits("r")[:2])
    monkeypatch.setattr(store, "commit_ids_with_prefix", lambda repo, prefix, limit=5: [a, b])
    with pytest.raises(AmbiguousReference) as e:
        store.resolve("r@0123abcd")
    assert a in str(e.value) and b in str(e.value) and "give more" in str(e.value)


def test_a_branch_named_like_hex_wins(store):
    head = store.list_commits("r")[0]
    other = store.list_commits("r")[3]
    store.create_branch("r", "deadbeef", head=other.id)
    assert store.resolve("r@deadbeef").id == other.id
    assert head.id != other.id


def test_report_urls_take_a_short_id_and_redirect_to_the_full_one(store, tmp_path, monkeypatch):
    from reports import create_app

    cid = store.list_commits("r")[0].id
    app = create_app({"TULIP_ROOT": str(store.root), "TULIP_CACHE_DIR": str(tmp_path / "c")})
    client = app.test_client()
    r = client.get(f"/commits/r/{cid[:12]}")
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/commits/r/{cid}")
    assert client.get(f"/audits/r/{cid[:12]}").status_code == 404  # found, but holds no audit
    two = [cid, store.list_commits("r")[1].id]
    # the server opens its own store per request: make every store see two candidates
    monkeypatch.setattr(type(store), "commit_ids_with_prefix", lambda *_a, **_k: two)
    r = client.get(f"/commits/r/{cid[:12]}")
    assert r.status_code == 400 and two[1] in r.get_data(as_text=True)
