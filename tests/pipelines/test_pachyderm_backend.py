"""PachydermBackend through the real pachyderm-sdk client, over a real gRPC channel, against the
pachd protocol double (tests/pachyderm_double): every Backend method, Pachyderm's quirks, and
errors mapped to Tulip's."""

from __future__ import annotations

import json
import os
import re
import time
from importlib import resources
from pathlib import Path

import grpc
import pytest

from pipelines import specs as specmod
from pipelines.backend import Backend
from pipelines.connect import open_backend
from pipelines.errors import (
    BackendUnavailable,
    BranchNotFound,
    CommitConflict,
    CommitNotFound,
    FileNotFound,
    InvalidPath,
    InvalidSpec,
    JobNotFound,
    PipelineCycle,
    PipelineNotFound,
    RepoExists,
    RepoNotFound,
    SourceChanged,
    UnsupportedCluster,
)
from pipelines.pachyderm import (
    PACHD_ADDRESS_ENV,
    PEER_HOST_ENV,
    PEER_PORT_ENV,
    PachydermBackend,
    connection_source,
    in_worker,
    pfs_repo,
    repo_name,
)
from tests.pachyderm_double import DoubleJob, PachdProtocolDouble

ID = re.compile(r"^[0-9a-f]{32}$")
SHARED = Path(os.environ.get("TULIP_SHARED", Path(__file__).resolve().parents[2].parent / "shared"))


@pytest.fixture
def pachd():
    with PachdProtocolDouble(auto_run=False) as d:
        yield d


@pytest.fixture
def backend(pachd, monkeypatch):
    monkeypatch.setenv(PACHD_ADDRESS_ENV, pachd.address)
    b = PachydermBackend.from_environment()
    yield b
    b.close()


def put(b: Backend, repo: str, files: dict[str, bytes], *, deletes=(), message: str = "") -> str:
    with b.start_commit(repo, "master", description=message) as w:
        for p in deletes:
            w.delete(p)
        for p, data in files.items():
            w.put_bytes(p, data)
    return w.id


def copy_pipeline(name: str = "Copy", repo: str = "images", glob: str = "/*") -> dict:
    return {
        "pipeline": {"name": name},
        "description": f"copies {repo}",
        "transform": {"image": "tulip/test", "cmd": ["sh", "-c", "cp -r /pfs/in/. /pfs/out/"]},
        "input": {"pfs": {"repo": repo, "glob": glob, "name": "in"}},
    }


def copy_transform(job: DoubleJob) -> dict[str, bytes]:
    return dict(job.inputs["in"])


# -- connecting -----------------------------------------------------------------------------


def test_from_environment_uses_pachd_address_and_the_real_client(backend, pachd):
    assert backend.check().startswith("2.12")
    assert backend.address == pachd.address
    assert "/versionpb_v2.API/GetVersion" in pachd.calls


def test_open_backend_selects_pachyderm_from_the_environment(pachd, monkeypatch):
    monkeypatch.setenv(PACHD_ADDRESS_ENV, pachd.address)
    monkeypatch.setenv("TULIP_BACKEND", "pachyderm")
    b = open_backend()
    assert isinstance(b, PachydermBackend) and b.name == "pachyderm"
    b.close()


@pytest.mark.parametrize("address", ["grpc://127.0.0.1:1", "grpc://10.255.255.1:30650"])
def test_an_unreachable_cluster_is_a_clear_error_within_seconds(address, monkeypatch):
    """Refused (port 1) or silently dropped (a non-routable address): never a hang."""
    monkeypatch.setenv(PACHD_ADDRESS_ENV, address)
    t0 = time.monotonic()
    with pytest.raises(BackendUnavailable, match=r"cannot reach pachd at .*PACHD_ADDRESS"):
        PachydermBackend.from_environment(connect_timeout=2)
    assert time.monotonic() - t0 < 5


def test_a_server_that_never_answers_times_out(monkeypatch):
    """A TCP port that accepts but never speaks HTTP/2 (a stuck port-forward): the version
    call's deadline ends the wait."""
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        monkeypatch.setenv(PACHD_ADDRESS_ENV, f"grpc://127.0.0.1:{silent.getsockname()[1]}")
        t0 = time.monotonic()
        with pytest.raises(BackendUnavailable, match="DEADLINE_EXCEEDED"):
            PachydermBackend.from_environment(connect_timeout=1.5)
        assert 1.0 < time.monotonic() - t0 < 5


def test_a_malformed_address_names_the_accepted_forms(monkeypatch):
    monkeypatch.setenv(PACHD_ADDRESS_ENV, "ftp://cluster:1")
    with pytest.raises(BackendUnavailable, match="grpc://HOST:PORT"):
        PachydermBackend.from_environment()


def test_without_address_the_pachctl_config_is_used(pachd, tmp_path, monkeypatch):
    import pachyderm_sdk.constants as constants

    monkeypatch.delenv(PACHD_ADDRESS_ENV, raising=False)
    missing = tmp_path / "none.json"
    monkeypatch.setattr(constants, "DEFAULT_CONFIG", missing)
    with pytest.raises(BackendUnavailable, match="set PACHD_ADDRESS"):
        PachydermBackend.from_environment()
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "v2": {
                    "active_context": "local",
                    "contexts": {"local": {"pachd_address": pachd.address}},
                }
            }
        )
    )
    monkeypatch.setattr(constants, "DEFAULT_CONFIG", config)
    b = PachydermBackend.from_environment()
    b.create_repo("via_config")
    assert [r.name for r in b.list_repos()] == ["via_config"]


def test_inside_a_worker_the_in_cluster_client_is_used(pachd, tmp_path, monkeypatch):
    """A worker has no PACHD_ADDRESS and no pachctl config, only the pachd-peer service's
    variables: pachyderm-sdk's Client.new_in_cluster reads them."""
    import pachyderm_sdk.constants as constants

    monkeypatch.delenv(PACHD_ADDRESS_ENV, raising=False)
    monkeypatch.setattr(constants, "DEFAULT_CONFIG", tmp_path / "no-config.json")
    monkeypatch.setenv(PEER_HOST_ENV, "127.0.0.1")
    monkeypatch.setenv(PEER_PORT_ENV, str(pachd.port))
    assert connection_source().kind == "in-cluster" and in_worker()
    with PachydermBackend.from_environment() as b:
        assert b.address == pachd.address and b.source.kind == "in-cluster"
        b.create_repo("from_a_worker")
        assert [r.name for r in b.list_repos()] == ["from_a_worker"]
    monkeypatch.delenv(PEER_PORT_ENV)
    with pytest.raises(BackendUnavailable, match=PEER_PORT_ENV):
        PachydermBackend.from_environment()


def test_pachd_address_wins_over_the_worker_environment(pachd, monkeypatch):
    monkeypatch.setenv(PEER_HOST_ENV, "10.255.255.1")
    monkeypatch.setenv(PEER_PORT_ENV, "30653")
    monkeypatch.setenv(PACHD_ADDRESS_ENV, pachd.address)
    assert connection_source().kind == "address"
    with PachydermBackend.from_environment() as b:
        assert b.address == pachd.address


def test_a_pachd_older_than_2_8_is_refused_on_connect(pachd, monkeypatch):
    pachd.version = (2, 7, 4)
    monkeypatch.setenv(PACHD_ADDRESS_ENV, pachd.address)
    with pytest.raises(
        UnsupportedCluster, match=r"pachd 2\.7\.4 .*CreatePipelineV2, added in pachd 2\.8"
    ):
        PachydermBackend.from_environment()


def test_features_newer_than_the_cluster_are_refused_before_they_are_sent(pachd, monkeypatch):
    """pachd 2.9 has CreatePipelineV2 but not EditMetadata (2.10): pipelines deploy, the
    verdict write-back is refused with the feature and the release named."""
    pachd.version = (2, 9, 1)
    monkeypatch.setenv(PACHD_ADDRESS_ENV, pachd.address)
    b = PachydermBackend.from_environment()
    assert b.check() == "2.9.1"
    b.create_repo("images")
    put(b, "images", {"/a": b"1"})
    b.create_pipeline(copy_pipeline())
    c = b.resolve("images@master")
    with pytest.raises(
        UnsupportedCluster, match=r"EditMetadata, which pachd 2\.10 added.* is 2\.9\.1"
    ):
        b.set_commit_metadata("images", c.id, {"tulip.verdict": "pass"})
    assert "/metadata.API/EditMetadata" not in pachd.calls
    # and the double answers as a 2.9 pachd would, had the call been sent
    from pachyderm_sdk.api import metadata as mdapi

    with pytest.raises(grpc.RpcError) as e:
        b.client.metadata.edit_metadata(edits=[mdapi.Edit()])
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    b.close()


def test_the_bundled_specs_placeholder_image_is_refused_on_a_cluster(backend):
    backend.create_repo("images")
    spec = {**copy_pipeline(), "transform": {"image": "tulip/tulip:0.1.0", "cmd": ["true"]}}
    with pytest.raises(InvalidSpec, match=r"placeholder.*tulip deploy --image"):
        backend.create_pipeline(spec)
    assert backend.list_pipelines() == []


def test_a_development_build_of_pachd_is_not_refused(pachd, monkeypatch):
    pachd.version = (0, 0, 0)  # pachd built from source
    monkeypatch.setenv(PACHD_ADDRESS_ENV, pachd.address)
    with PachydermBackend.from_environment() as b:
        b.create_repo("r")
        put(b, "r", {"/a": b"1"})
        b.set_commit_metadata("r", b.resolve("r@master").id, {"k": "v"})
        assert b.resolve("r@master").metadata == {"k": "v"}


# -- names ------------------------------------------------------------------------------------


def test_spec_repos_map_to_dot_spec_names():
    assert repo_name(pfs_repo("Train.spec")) == "Train.spec"
    assert pfs_repo("Train.spec").type == "spec" and pfs_repo("Train.spec").name == "Train"
    assert pfs_repo("flower_photos").type == "user"


# -- repos and branches ------------------------------------------------------------------------


def test_repos_are_created_listed_and_unique(backend):
    info = backend.create_repo("flower_photos", description="photos")
    assert (info.name, info.type, info.description, info.pipeline) == (
        "flower_photos",
        "user",
        "photos",
        None,
    )
    assert info.branches == []  # pachd makes no branch until the first commit
    with pytest.raises(RepoExists):
        backend.create_repo("flower_photos")
    with pytest.raises(RepoNotFound, match="repos: flower_photos"):
        backend.inspect_repo("flower_photo")
    with pytest.raises(InvalidPath):
        backend.create_repo("bad/name")
    with pytest.raises(InvalidPath):
        backend.create_repo("sneaky.spec")


def test_spec_repos_are_listed_on_request_and_meta_repos_never(backend, pachd):
    backend.create_repo("images")
    put(backend, "images", {"/a.txt": b"a"})
    backend.create_pipeline(copy_pipeline())
    pachd.run_pending()
    assert sorted(r.name for r in backend.list_repos()) == ["Copy", "images"]
    everything = {r.name: r for r in backend.list_repos(include_specs=True)}
    assert sorted(everything) == ["Copy", "Copy.spec", "images"]
    assert everything["Copy"].pipeline == "Copy" and everything["Copy.spec"].type == "spec"
    assert any(r.endswith("Copy.meta") for r in pachd.spec_repos())  # there, but hidden
    assert backend.inspect_repo("Copy.spec").pipeline == "Copy"


def test_branches_carry_provenance_on_inputs_and_the_spec(backend, pachd):
    backend.create_repo("images")
    put(backend, "images", {"/a.txt": b"a"})
    backend.create_pipeline(copy_pipeline())
    assert backend.inspect_branch("Copy", "master").provenance == [
        ("Copy.spec", "master"),
        ("images", "master"),
    ]
    assert [b.name for b in backend.list_branches("images")] == ["master"]
    with pytest.raises(BranchNotFound, match="branches: master"):
        backend.inspect_branch("images", "mastr")
    b = backend.create_branch("images", "dev", head=backend.resolve("images@master").id)
    assert b.head == backend.resolve("images@master").id


def test_delete_repo_guards_pipeline_outputs(backend, pachd):
    backend.create_repo("images")
    put(backend, "images", {"/a": b"1"})
    backend.create_pipeline(copy_pipeline())
    with pytest.raises(CommitConflict, match="delete the pipeline"):
        backend.delete_repo("Copy")
    with pytest.raises(CommitConflict):
        backend.delete_repo("images")  # an input of Copy
    backend.create_repo("scratch")
    backend.delete_repo("scratch")
    with pytest.raises(RepoNotFound):
        backend.delete_repo("scratch")


# -- commits ------------------------------------------------------------------------------------


def test_commits_have_pachyderms_shape(backend):
    backend.create_repo("r")
    c1 = put(backend, "r", {"/a.txt": b"one"})
    c2 = put(backend, "r", {"/b.txt": b"two"}, message="second")
    one, two = backend.inspect_commit("r", c1), backend.inspect_commit("r", c2)
    assert ID.match(c1) and one.origin == "USER" and one.parent is None and one.branch == "master"
    assert one.finished is not None and one.finished >= one.started
    assert two.parent == c1 and two.description == "second" and two.size_bytes == 6
    assert [c.id for c in backend.list_commits("r")] == [c2, c1]
    assert [c.id for c in backend.list_commits("r", "master", limit=1)] == [c2]
    assert backend.resolve("r@master^").id == c1
    with pytest.raises(CommitNotFound, match="first commit"):
        backend.resolve("r@master^^")
    with pytest.raises(CommitNotFound, match="tulip list commit r"):
        backend.inspect_commit("r", "0" * 32)
    with pytest.raises(RepoNotFound):
        backend.list_commits("nope")
    with pytest.raises(BranchNotFound):
        backend.list_commits("r", "dev")


def test_a_failed_writer_commits_nothing(backend, pachd):
    backend.create_repo("r")
    c1 = put(backend, "r", {"/a": b"1"})
    with pytest.raises(RuntimeError), backend.start_commit("r") as w:
        w.put_bytes("/b", b"2")
        raise RuntimeError("boom")
    assert [c.id for c in backend.list_commits("r")] == [c1]
    assert backend.inspect_branch("r", "master").head == c1
    with pytest.raises(FileNotFound, match="nothing was deleted"), backend.start_commit("r") as w:
        w.put_bytes("/c", b"3")
        w.delete("/not-there")
    assert [c.id for c in backend.list_commits("r")] == [c1]


def test_commits_on_a_pipeline_output_are_refused(backend, pachd):
    backend.create_repo("images")
    put(backend, "images", {"/a": b"1"})
    backend.create_pipeline(copy_pipeline())
    with (
        pytest.raises(CommitConflict, match="written by pipeline Copy"),
        backend.start_commit("Copy") as w,
    ):
        w.put_bytes("/x", b"x")


def test_put_tree_follows_pachctl_put_file_r(backend, tmp_path):
    src = tmp_path / "photos"
    for rel, data in {"daisy/1.jpg": b"d1", "daisy/2.jpg": b"d2", "roses/1.jpg": b"r1"}.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    (src / "roses" / "link.jpg").symlink_to(src / "daisy" / "1.jpg")
    backend.create_repo("flower_photos")
    seen = []
    with backend.start_commit("flower_photos") as w:
        assert w.put_tree("/", src, progress=seen.append) == 4
    assert sum(seen) == 8
    c = backend.resolve("flower_photos@master")
    assert [f.path for f in backend.walk_files("flower_photos", c.id)] == [
        "/daisy/1.jpg",
        "/daisy/2.jpg",
        "/roses/1.jpg",
        "/roses/link.jpg",
    ]
    assert backend.get_file("flower_photos", c.id, "/roses/link.jpg") == b"d1"

    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    (src / "roses" / "escape.jpg").symlink_to(outside)
    with (
        pytest.raises(InvalidPath, match="outside the tree"),
        backend.start_commit("flower_photos") as w,
    ):
        w.put_tree("/", src)
    (src / "roses" / "escape.jpg").unlink()

    with pytest.raises(SourceChanged, match="vanished"), backend.start_commit("flower_photos") as w:
        w.put_tree("/more", src)
        (src / "daisy" / "2.jpg").unlink()  # gone before the commit streams it
    assert [x.id for x in backend.list_commits("flower_photos")] == [c.id]


def test_paths_pachd_refuses_are_invalid_paths(backend):
    """pfs ValidateFilename: no glob characters in file names."""
    backend.create_repo("r")
    with pytest.raises(InvalidPath, match="globbing character"):
        put(backend, "r", {"/photo (1).jpg": b"x"})


def test_metadata_is_written_back_for_pachctl_users(backend, pachd):
    backend.create_repo("r")
    c = put(backend, "r", {"/a": b"1"})
    backend.set_commit_metadata("r", c, {"tulip.verdict": "fail", "tulip.findings": 3})
    backend.set_commit_metadata("r", c, {"tulip.verdict": "pass"})
    assert backend.inspect_commit("r", c).metadata == {
        "tulip.verdict": "pass",
        "tulip.findings": "3",
    }
    assert "/metadata.API/EditMetadata" in pachd.calls
    with pytest.raises(CommitNotFound):
        backend.set_commit_metadata("r", "f" * 32, {"a": "b"})


def test_delete_commit_drops_its_commit_set(backend, pachd):
    pachd.transforms["Copy"] = copy_transform
    backend.create_repo("images")
    c1 = put(backend, "images", {"/a/1": b"1"})
    backend.create_pipeline(copy_pipeline())
    pachd.run_pending()
    c2 = put(backend, "images", {"/b/1": b"2"})
    pachd.run_pending()
    with pytest.raises(CommitConflict, match="made by a pipeline"):
        backend.delete_commit("Copy", c2)
    with pytest.raises(CommitConflict):
        backend.delete_commit("images", c1)  # not a head: later commits build on it
    deleted = backend.delete_commit("images", c2)
    assert {(d.repo, d.id) for d in deleted} == {("images", c2), ("Copy", c2)}
    assert backend.resolve("images@master").id == c1
    with pytest.raises(CommitNotFound):
        backend.commit_set(c2)


# -- provenance, commit sets, subvenance ------------------------------------------------------------


@pytest.fixture
def chain(backend, pachd):
    """images -> Copy, then Count = cross(Copy, labels); three data commits after."""
    pachd.transforms["Copy"] = copy_transform
    pachd.transforms["Count"] = lambda job: {"/count": str(len(job.inputs["Copy"])).encode()}
    backend.create_repo("images")
    backend.create_repo("labels")
    ids = {"labels": put(backend, "labels", {"/labels.txt": b"daisy\n"})}
    ids["c1"] = put(backend, "images", {"/a/1.txt": b"one", "/a/2.txt": b"two"})
    ids["spec_copy"] = backend.create_pipeline(copy_pipeline()).spec_commit
    pachd.run_pending()
    count = {
        "pipeline": {"name": "Count"},
        "transform": {"cmd": ["sh", "-c", "ls -R /pfs/Copy | wc -l > /pfs/out/count"]},
        "input": {
            "cross": [
                {"pfs": {"repo": "Copy", "glob": "/"}},
                {"pfs": {"repo": "labels", "glob": "/"}},
            ]
        },
    }
    ids["spec_count"] = backend.create_pipeline(count).spec_commit
    pachd.run_pending()
    ids["c2"] = put(backend, "images", {"/b/1.txt": b"three"})
    pachd.run_pending()
    ids["c3"] = put(backend, "images", {"/a/1.txt": b"ONE"}, deletes=["/a/2.txt"])
    pachd.run_pending()
    return ids


def test_direct_provenance_keeps_older_ids_and_the_spec(backend, chain):
    copy = backend.inspect_commit("Copy", chain["c2"])
    assert copy.origin == "AUTO" and copy.branch == "master"
    assert [(p.repo, p.id) for p in copy.direct_provenance] == [
        ("Copy.spec", chain["spec_copy"]),  # the spec did not change: its older ID
        ("images", chain["c2"]),
    ]
    count = backend.inspect_commit("Count", chain["c2"])
    assert [(p.repo, p.id) for p in count.direct_provenance] == [
        ("Copy", chain["c2"]),
        ("Count.spec", chain["spec_count"]),
        ("labels", chain["labels"]),  # unchanged input, older ID
    ]


def test_provenance_walks_the_graph_like_the_base_class(backend, chain, pachd):
    head = backend.resolve("Count@master")
    walked = backend.provenance(head)
    assert walked == Backend.provenance(backend, head)  # same refs, same order
    assert {(p.repo, p.id) for p in walked} == {
        ("Copy", chain["c3"]),
        ("Count.spec", chain["spec_count"]),
        ("labels", chain["labels"]),
        ("Copy.spec", chain["spec_copy"]),
        ("images", chain["c3"]),
    }
    assert "/pfs_v2.API/WalkCommitProvenance" in pachd.calls


def test_commit_sets_keep_their_own_commits_upstream_first(backend, chain):
    members = backend.commit_set(chain["c2"])
    # pachd also returns the older commits the set depends on, and Copy.meta/Count.meta
    assert [(c.repo, c.id) for c in members] == [
        ("images", chain["c2"]),
        ("Copy", chain["c2"]),
        ("Count", chain["c2"]),
    ]
    assert [c.repo for c in backend.commit_set(chain["spec_count"])] == ["Count.spec", "Count"]
    assert backend.wait_commit_set(chain["c2"], timeout=5) == members
    with pytest.raises(CommitNotFound, match="no commit set"):
        backend.commit_set("a" * 32)


def test_wait_commit_set_waits_for_the_jobs(backend, pachd):
    pachd.transforms["Copy"] = copy_transform
    backend.create_repo("images")
    put(backend, "images", {"/a": b"1"})
    backend.create_pipeline(copy_pipeline())
    pachd.run_pending()
    c = put(backend, "images", {"/b": b"2"})
    assert backend.inspect_commit("Copy", c).finished is None
    with pytest.raises(TimeoutError, match="Copy@"):
        backend.wait_commit_set(c, timeout=0.3)
    import threading

    threading.Timer(0.3, pachd.run_pending).start()
    done = backend.wait_commit_set(c)  # server-side wait, no timeout
    assert all(x.finished for x in done)
    assert [f.path for f in backend.walk_files("Copy", c)] == ["/a", "/b"]


def test_subvenance_hides_meta_commits(backend, chain):
    assert [(s.repo, s.id) for s in backend.subvenance("images", chain["c2"])] == [
        ("Copy", chain["c2"])
    ]
    assert [(s.repo, s.id) for s in backend.subvenance("labels", chain["labels"])] == [
        ("Count", chain["spec_count"]),
        ("Count", chain["c2"]),
        ("Count", chain["c3"]),
    ]


def test_an_empty_input_repo_gets_an_empty_auto_commit(backend, pachd):
    """Pachyderm quirk (driver fillNewBranches): a pipeline over a repo with no branch yet
    gives that repo's master an empty AUTO commit, in the pipeline's commit set."""
    backend.create_repo("empty")
    info = backend.create_pipeline(copy_pipeline(repo="empty"))
    first = backend.resolve("empty@master")
    assert first.origin == "AUTO" and first.id == info.spec_commit and first.size_bytes == 0
    assert [c.repo for c in backend.commit_set(info.spec_commit)] == ["Copy.spec", "empty", "Copy"]


# -- files ---------------------------------------------------------------------------------------------


@pytest.fixture
def photos(backend):
    backend.create_repo("flower_photos")
    ids = [
        put(
            backend,
            "flower_photos",
            {"/daisy/1.jpg": b"d1", "/daisy/2.jpg": b"d2", "/tulips/1.jpg": b"t1"},
        ),
        put(
            backend,
            "flower_photos",
            {"/orchids/1.jpg": b"t2", "/orchids/2.jpg": b"t3"},
            message="orchids",
        ),
        put(backend, "flower_photos", {"/daisy/1.jpg": b"D1"}, deletes=["/orchids"]),
    ]
    return ids


def test_list_walk_inspect_and_get(backend, photos):
    c = photos[1]
    top = backend.list_files("flower_photos", c)
    assert [(f.path, f.type, f.size, f.hash) for f in top] == [
        ("/daisy/", "dir", 4, None),
        ("/orchids/", "dir", 4, None),
        ("/tulips/", "dir", 2, None),
    ]
    assert [f.path for f in backend.list_files("flower_photos", c, "/daisy")] == [
        "/daisy/1.jpg",
        "/daisy/2.jpg",
    ]
    assert [f.path for f in backend.list_files("flower_photos", c, "/", recursive=True)] == [
        "/daisy/1.jpg",
        "/daisy/2.jpg",
        "/orchids/1.jpg",
        "/orchids/2.jpg",
        "/tulips/1.jpg",
    ]
    f = backend.inspect_file("flower_photos", c, "/orchids/1.jpg")
    assert (f.type, f.size, f.commit, f.repo) == ("file", 2, c, "flower_photos")
    assert re.fullmatch(r"[0-9a-f]{64}", f.hash)
    d = backend.inspect_file("flower_photos", c, "/daisy")
    assert (d.path, d.type, d.size, d.hash) == ("/daisy", "dir", 4, None)
    assert backend.get_file("flower_photos", c, "/orchids/2.jpg") == b"t3"
    assert list(backend.walk_files("flower_photos", c, "/nowhere")) == []
    with pytest.raises(FileNotFound, match="is a directory"):
        backend.get_file("flower_photos", c, "/daisy")
    with pytest.raises(FileNotFound, match=r"no file or directory /daisy/9\.jpg"):
        backend.get_file("flower_photos", c, "/daisy/9.jpg")
    with pytest.raises(FileNotFound, match="no file or directory /nowhere"):
        backend.list_files("flower_photos", c, "/nowhere")
    with pytest.raises(FileNotFound):
        backend.inspect_file("flower_photos", c, "/nowhere.jpg")


def test_same_content_same_hash_but_not_sha256_of_the_bytes(backend, photos):
    """pachd hashes chunk hashes; equal content still has equal hashes."""
    import hashlib

    h1 = backend.inspect_file("flower_photos", photos[0], "/tulips/1.jpg").hash
    h2 = backend.inspect_file("flower_photos", photos[1], "/tulips/1.jpg").hash
    assert h1 == h2 and h1 != hashlib.sha256(b"t1").hexdigest()


def test_copy_out_a_file_and_a_tree(backend, photos, tmp_path):
    written = backend.copy_out("flower_photos", photos[1], "/orchids", tmp_path / "out")
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in written) == ["1.jpg", "2.jpg"]
    (tmp_path / "one").mkdir()
    [one] = backend.copy_out("flower_photos", photos[1], "/daisy/1.jpg", tmp_path / "one")
    assert one.read_bytes() == b"d1"


def test_diff_files(backend, photos):
    changes = backend.diff_files("flower_photos", photos[2], photos[1])
    assert [(c.path, c.change) for c in changes] == [
        ("/daisy/1.jpg", "modified"),
        ("/orchids/1.jpg", "deleted"),
        ("/orchids/2.jpg", "deleted"),
    ]
    assert (
        changes[0].old_size == 2
        and changes[0].new_size == 2
        and changes[0].old_hash != changes[0].new_hash
    )
    assert [c.change for c in backend.diff_files("flower_photos", photos[0], None)] == ["added"] * 3
    across = backend.diff_files(
        "flower_photos", photos[1], photos[1], "/orchids", old_path="/daisy"
    )
    assert [(c.path, c.change) for c in across] == [
        ("/orchids/1.jpg", "modified"),
        ("/orchids/2.jpg", "modified"),
    ]


def test_find_commits_without_list_file_history(backend, photos, pachd):
    rows = backend.find_commits("flower_photos", "master", "/orchids")
    assert [(r.commit.id, r.change, r.files) for r in rows] == [
        (photos[2], "deleted", ["/orchids/1.jpg", "/orchids/2.jpg"]),
        (photos[1], "added", ["/orchids/1.jpg", "/orchids/2.jpg"]),
    ]
    rows = backend.find_commits("flower_photos", photos[2], "/daisy")
    assert [(r.commit.id, r.change) for r in rows] == [
        (photos[2], "modified"),
        (photos[0], "added"),
    ]
    assert "/pfs_v2.API/DiffFile" in pachd.calls


def test_introduced_by_follows_content(backend, photos):
    got = backend.introduced_by(
        "flower_photos", photos[2], ["/daisy/1.jpg", "/daisy/2.jpg", "/gone.jpg"]
    )
    assert got == {"/daisy/1.jpg": photos[2], "/daisy/2.jpg": photos[0]}
    assert got == Backend.introduced_by(
        backend, "flower_photos", photos[2], ["/daisy/1.jpg", "/daisy/2.jpg"]
    )


def test_spec_commits_hold_spec_json_as_in_the_embedded_store(backend, pachd):
    backend.create_repo("images")
    put(backend, "images", {"/a": b"1"})
    v1 = backend.create_pipeline(copy_pipeline())
    spec2 = copy_pipeline()
    spec2["description"] = "v2"
    v2 = backend.create_pipeline(spec2, update=True)
    assert v2.version == 2 and v2.spec_commit != v1.spec_commit
    for info, spec in ((v1, copy_pipeline()), (v2, spec2)):
        text = backend.get_file("Copy.spec", info.spec_commit, "/spec.json")
        assert json.loads(text) == specmod.normalize(spec)
        assert text == json.dumps(specmod.normalize(spec), indent=2, sort_keys=True).encode()
        assert backend.inspect_commit("Copy.spec", info.spec_commit).size_bytes == len(text)
    assert [f.path for f in backend.list_files("Copy.spec", v2.spec_commit)] == ["/spec.json"]
    rows = backend.find_commits("Copy.spec", "master", "/spec.json")
    assert [(r.commit.id, r.change) for r in rows] == [
        (v2.spec_commit, "modified"),
        (v1.spec_commit, "added"),
    ]


# -- pipelines -----------------------------------------------------------------------------------------


def test_create_pipeline_through_create_pipeline_v2(backend, pachd):
    backend.create_repo("images")
    put(backend, "images", {"/a": b"1"})
    snake = {
        "pipeline": {"name": "Copy"},
        "transform": {"cmd": ["sh"], "image": "x"},
        "parallelism_spec": {"constant": 1},
        "input": {"pfs": {"repo": "images", "glob": "/*"}},
    }
    info = backend.create_pipeline(snake)
    assert "/pps_v2.API/CreatePipelineV2" in pachd.calls
    assert info.spec == specmod.normalize(snake)  # the user's spec, not pachd's effective one
    assert "resourceRequests" not in info.spec
    assert (info.version, info.state, info.inputs) == (1, "running", [("images", "master")])
    assert ID.match(info.spec_commit)
    assert [p.name for p in backend.list_pipelines()] == ["Copy"]
    assert backend.inspect_pipeline("Copy") == info


def test_dry_run_validates_without_creating(backend, pachd):
    backend.create_repo("images")
    info = backend.create_pipeline(copy_pipeline(), dry_run=True)
    assert info.state == "dry-run" and info.version == 1
    assert backend.list_pipelines() == []
    assert sorted(r.name for r in backend.list_repos(include_specs=True)) == ["images"]


def test_bad_specs_are_refused_with_the_field_named(backend, pachd):
    backend.create_repo("images")
    typo = copy_pipeline()
    typo["transfrom"] = typo.pop("transform")
    calls = len(pachd.calls)
    with pytest.raises(InvalidSpec, match="transfrom"):
        backend.create_pipeline(typo)
    assert len(pachd.calls) == calls  # refused before reaching the cluster
    with pytest.raises(InvalidSpec, match="'nope', which does not exist"):
        backend.create_pipeline(copy_pipeline(repo="nope"))
    with pytest.raises(PipelineCycle):
        backend.create_pipeline(copy_pipeline(name="images2", repo="images2"))
    backend.create_pipeline(copy_pipeline())
    with pytest.raises(InvalidSpec, match="already exists; use `tulip update pipeline"):
        backend.create_pipeline(copy_pipeline())
    with pytest.raises(PipelineNotFound, match="to update"):
        backend.create_pipeline(copy_pipeline(name="Other"), update=True)


def test_cluster_only_features_pass_for_pachyderm(backend):
    """Specs bound for a cluster are checked with local=False: cron inputs are fine here."""
    spec = {
        "pipeline": {"name": "Tick"},
        "transform": {"cmd": ["date"]},
        "input": {"cron": {"name": "tick", "spec": "@every 1h"}},
    }
    with pytest.raises(InvalidSpec, match="not supported by the embedded engine"):
        specmod.normalize(spec)
    assert specmod.normalize(spec, local=False)["input"]["cron"]["name"] == "tick"


def test_jobs_datums_and_logs(backend, pachd):
    def transform(job: DoubleJob) -> dict[str, bytes]:
        job.log(f"copying {len(job.inputs['in'])} files")
        return dict(job.inputs["in"])

    pachd.transforms["Copy"] = transform
    backend.create_repo("images")
    put(backend, "images", {"/a/1": b"1", "/b/1": b"2"})
    backend.create_pipeline(copy_pipeline())
    pachd.run_pending()
    c2 = put(backend, "images", {"/c/1": b"3"})
    pachd.run_pending()
    jobs = backend.list_jobs("Copy")
    assert jobs[0].id == c2
    latest = jobs[0]
    assert (latest.state, latest.data_total, latest.data_processed, latest.data_skipped) == (
        "success",
        3,
        1,
        2,
    )
    assert latest.output_commit == c2 and latest.done and latest.spec_version == 1
    assert backend.inspect_job("Copy", c2) == latest
    assert backend.list_jobs(limit=1) == [latest]
    datums = backend.list_datums("Copy", c2)
    assert sorted((d.state, tuple(d.files)) for d in datums) == [
        ("skipped", ("/a/1",)),
        ("skipped", ("/b/1",)),
        ("success", ("/c/1",)),
    ]
    assert "copying 3 files" in backend.logs("Copy", c2)
    with pytest.raises(JobNotFound, match="tulip list job -p Copy"):
        backend.inspect_job("Copy", "e" * 32)
    with pytest.raises(PipelineNotFound, match="pipelines: Copy"):
        backend.list_jobs("Nope")


def test_a_failed_job_keeps_the_last_good_output(backend, pachd):
    def fragile(job: DoubleJob) -> dict[str, bytes]:
        if "/bad" in job.inputs["in"]:
            raise RuntimeError("gate blocked: the data is bad")
        return dict(job.inputs["in"])

    pachd.transforms["Copy"] = fragile
    pachd.transforms["Next"] = lambda job: {"/n": b"n"}
    backend.create_repo("images")
    put(backend, "images", {"/good": b"1"})
    backend.create_pipeline(copy_pipeline(glob="/"))
    backend.create_pipeline(copy_pipeline(name="Next", repo="Copy"))
    pachd.run_pending()
    bad = put(backend, "images", {"/bad": b"2"})
    pachd.run_pending()
    job = backend.inspect_job("Copy", bad)
    assert job.state == "failure" and job.data_failed == 1
    # pachd's reason names the datum; the stage's last stderr line comes from the job's logs
    assert re.fullmatch(r"datum [0-9a-f]{64} failed: gate blocked: the data is bad", job.reason)
    out = backend.inspect_commit("Copy", bad)
    assert out.error == job.reason and out.finished
    assert [f.path for f in backend.walk_files("Copy", bad)] == ["/good"]
    assert backend.inspect_job("Next", bad).state == "unrunnable"
    assert "gate blocked: the data is bad" in backend.logs("Copy", bad)


def test_stop_start_and_delete_pipeline(backend, pachd):
    pachd.transforms["Copy"] = copy_transform
    backend.create_repo("images")
    put(backend, "images", {"/a": b"1"})
    backend.create_pipeline(copy_pipeline())
    pachd.run_pending()
    backend.set_pipeline_state("Copy", "paused")
    assert backend.inspect_pipeline("Copy").state == "paused"
    c = put(backend, "images", {"/b": b"2"})
    pachd.run_pending()
    assert backend.inspect_job("Copy", c).state == "created"
    backend.set_pipeline_state("Copy", "running")
    pachd.run_pending()
    assert backend.inspect_job("Copy", c).state == "success"
    backend.delete_pipeline("Copy")
    assert backend.list_pipelines() == []
    assert sorted(r.name for r in backend.list_repos(include_specs=True)) == ["images"]
    with pytest.raises(PipelineNotFound):
        backend.delete_pipeline("Copy")


# -- every spec of the project, on the wire ---------------------------------------------------------------

SPECS = sorted(p.name for p in resources.files("pipelines").iterdir() if p.name.endswith(".json"))


def test_the_project_has_specs():
    assert {"embed.json", "train.json", "convert.json", "tensorboard.json"} <= set(SPECS)


def _strip_wire_strings(sent, back):
    """protobuf JSON renders 64-bit integers as strings; compare them as numbers."""
    if isinstance(sent, dict) and isinstance(back, dict):
        return {k: _strip_wire_strings(sent.get(k), v) for k, v in back.items()}
    if isinstance(sent, list) and isinstance(back, list):
        return [_strip_wire_strings(a, b) for a, b in zip(sent, back, strict=False)]
    if isinstance(sent, int) and isinstance(back, str) and back.lstrip("-").isdigit():
        return int(back)
    return back


@pytest.mark.parametrize("name", SPECS)
def test_every_spec_validates_and_round_trips_through_create_pipeline_request(name):
    import jsonschema
    from pachyderm_sdk.api import pps

    raw = json.loads(resources.files("pipelines").joinpath(name).read_text())
    spec = specmod.normalize(raw, local=False)
    shared = SHARED / "pachyderm" / "CreatePipelineRequest.schema.json"
    schema = json.loads(shared.read_text()) if shared.exists() else specmod.schema()
    jsonschema.Draft4Validator(schema).validate(spec)
    request = pps.CreatePipelineRequest().from_dict(spec)
    back = _strip_wire_strings(spec, request.to_dict())
    assert back == spec, f"{name}: fields lost or changed on the wire"
    again = pps.CreatePipelineRequest().parse(bytes(request))
    assert again.to_dict() == request.to_dict()
    assert pps.CreatePipelineRequest().from_json(request.to_json()).to_dict() == request.to_dict()


@pytest.mark.parametrize("name", SPECS)
def test_every_spec_is_accepted_by_the_double_with_its_inputs(name, backend):
    from pipelines.deploy import with_image

    raw = json.loads(resources.files("pipelines").joinpath(name).read_text())
    # as `tulip deploy --image` sends it (the bundled placeholder image is refused)
    spec = with_image(specmod.normalize(raw, local=False), "registry.example/tulip:0.1.0")
    for pin in specmod.pfs_inputs(spec["input"]):
        if pin.repo not in {r.name for r in backend.list_repos()}:
            backend.create_repo(pin.repo)
    info = backend.create_pipeline(spec, dry_run=True)
    assert info.name == spec["pipeline"]["name"]


def test_why_find_commits_does_not_use_the_find_commits_rpc(backend, photos):
    """pachd's FindCommits matches exact file paths in each commit's diff: a directory never
    matches, and it does not say what changed. Hence the DiffFile walk."""
    from pachyderm_sdk.api import pfs

    start = pfs.Commit(repo=pfs_repo("flower_photos"), id=photos[2])
    found = [
        r.found_commit.id
        for r in backend.client.pfs.find_commits(start=start, file_path="/orchids/1.jpg")
        if r.found_commit is not None and r.found_commit.id
    ]
    assert found == [photos[2], photos[1]]
    on_dir = list(backend.client.pfs.find_commits(start=start, file_path="/orchids"))
    assert [r.found_commit.id for r in on_dir if r.found_commit and r.found_commit.id] == []
    assert len(backend.find_commits("flower_photos", photos[2], "/orchids")) == 2
