"""The live suite: Tulip on a real Pachyderm cluster (marker ``live``).

Skipped unless ``PACHD_ADDRESS`` points at a pachd (``grpc://localhost:30650`` after
``pachctl port-forward``, or ``grpc://$(minikube ip):30650``). See docs/pachyderm.md.

* Always (with PACHD_ADDRESS): the backend's repos, commits, files, history and metadata on
  throwaway repos named ``tulip_live_<random>``, deleted afterwards.
* With ``TULIP_LIVE_IMAGE`` (an image built from the Dockerfile, pullable by the cluster): a
  small pipeline runs, and its provenance, commit sets, jobs and datums are checked.
* With ``TULIP_LIVE_SEED=1`` as well: the seed story end to end with the real specs
  (``tulip deploy``), which creates ``flower_photos``, ``label_reference`` and the pipelines
  Embed, Train, Tensorboard, Audit and Convert. It refuses to run if any of them exists, so it
  never touches a cluster's real data; it leaves them behind for you to look at.

    PACHD_ADDRESS=grpc://localhost:30650 pytest -m live tests/live -v
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from pipelines.backend import Backend
from pipelines.errors import CommitConflict, FileNotFound, TulipError

ADDRESS = os.environ.get("PACHD_ADDRESS")
IMAGE = os.environ.get("TULIP_LIVE_IMAGE")
SEED = os.environ.get("TULIP_LIVE_SEED") == "1"
WAIT = float(os.environ.get("TULIP_LIVE_TIMEOUT", "1800"))
SHARED = Path(os.environ.get("TULIP_SHARED", Path(__file__).resolve().parents[2].parent / "shared"))
FLOWERS = SHARED / "data" / "flower_photos"

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        not ADDRESS,
        reason="no Pachyderm cluster: set PACHD_ADDRESS=grpc://HOST:30650 to run the live suite "
        "(docs/pachyderm.md, 'Running the live suite')",
    ),
]
needs_image = pytest.mark.skipif(
    bool(ADDRESS) and not IMAGE,
    reason="set TULIP_LIVE_IMAGE to a Tulip image the cluster can pull to run pipelines",
)


@pytest.fixture(scope="module")
def cluster():
    from pipelines.pachyderm import PachydermBackend

    b = PachydermBackend.from_environment()
    yield b
    b.close()


@pytest.fixture
def prefix(cluster):
    """A unique name prefix; everything created under it is deleted afterwards."""
    name = f"tulip_live_{uuid.uuid4().hex[:8]}"
    yield name
    for p in sorted(cluster.list_pipelines(), key=lambda p: -p.created):
        if p.name.startswith(name):
            cluster.delete_pipeline(p.name)
    for r in cluster.list_repos():
        if r.name.startswith(name):
            cluster.delete_repo(r.name, force=True)


def put(b: Backend, repo: str, files: dict[str, bytes], deletes=()) -> str:
    with b.start_commit(repo) as w:
        for p in deletes:
            w.delete(p)
        for p, data in files.items():
            w.put_bytes(p, data)
    return w.id


def test_the_cluster_is_in_the_supported_range(cluster):
    """Tulip needs pachd 2.8 (CreatePipelineV2), and 2.10 for the verdict write-back
    (EditMetadata); from_environment already refused anything older than 2.8."""
    from pipelines.pachyderm import FEATURES, MIN_PACHD

    assert cluster.version is not None
    if cluster.version[0] == 0:
        pytest.skip(f"pachd {cluster.version_text} is a development build")
    assert cluster.version[:2] >= MIN_PACHD
    for feature in FEATURES:
        if cluster.version[:2] >= FEATURES[feature].since:
            cluster.require(feature)


def test_repos_commits_files_and_history(cluster, prefix, tmp_path):
    repo = f"{prefix}_photos"
    cluster.create_repo(repo, description="live suite")
    c1 = put(cluster, repo, {"/daisy/1.jpg": b"d1", "/daisy/2.jpg": b"d2"})
    (tmp_path / "orchids").mkdir()
    for i in (1, 2):
        (tmp_path / "orchids" / f"{i}.jpg").write_bytes(f"tulip {i}".encode())
    with cluster.start_commit(repo, description="orchids") as w:
        assert w.put_tree("/orchids", tmp_path / "orchids") == 2
    c2 = w.id
    c3 = put(cluster, repo, {"/daisy/1.jpg": b"D1"}, deletes=["/orchids"])

    assert [c.id for c in cluster.list_commits(repo)] == [c3, c2, c1]
    head = cluster.resolve(f"{repo}@master")
    assert head.id == c3 and head.parent == c2 and head.origin == "USER"
    assert [f.path for f in cluster.walk_files(repo, c2)] == [
        "/daisy/1.jpg",
        "/daisy/2.jpg",
        "/orchids/1.jpg",
        "/orchids/2.jpg",
    ]
    assert [(f.path, f.type) for f in cluster.list_files(repo, c2)] == [
        ("/daisy/", "dir"),
        ("/orchids/", "dir"),
    ]
    assert cluster.get_file(repo, c2, "/orchids/2.jpg") == b"tulip 2"
    with pytest.raises(FileNotFound):
        cluster.get_file(repo, c3, "/orchids/1.jpg")
    assert [(c.path, c.change) for c in cluster.diff_files(repo, c3, c2)] == [
        ("/daisy/1.jpg", "modified"),
        ("/orchids/1.jpg", "deleted"),
        ("/orchids/2.jpg", "deleted"),
    ]
    assert [(r.commit.id, r.change) for r in cluster.find_commits(repo, "master", "/orchids")] == [
        (c3, "deleted"),
        (c2, "added"),
    ]
    assert cluster.introduced_by(repo, c3, ["/daisy/1.jpg", "/daisy/2.jpg"]) == {
        "/daisy/1.jpg": c3,
        "/daisy/2.jpg": c1,
    }
    cluster.set_commit_metadata(repo, c2, {"tulip.verdict": "fail"})
    assert cluster.inspect_commit(repo, c2).metadata["tulip.verdict"] == "fail"
    with pytest.raises(CommitConflict):
        cluster.delete_commit(repo, c2)  # not the head
    cluster.delete_commit(repo, c3)
    assert cluster.resolve(f"{repo}@master").id == c2


@needs_image
def test_a_pipeline_records_pachyderm_provenance(cluster, prefix):
    repo, name = f"{prefix}_in", f"{prefix}_copy"
    cluster.create_repo(repo)
    c1 = put(cluster, repo, {"/a/1": b"1", "/b/1": b"2"})
    info = cluster.create_pipeline(
        {
            "pipeline": {"name": name},
            "transform": {"image": IMAGE, "cmd": ["sh", "-c", "cp -r /pfs/in/. /pfs/out/"]},
            "input": {"pfs": {"repo": repo, "glob": "/*", "name": "in"}},
        }
    )
    cluster.wait_commit_set(info.spec_commit, timeout=WAIT)
    c2 = put(cluster, repo, {"/c/1": b"3"})
    members = cluster.wait_commit_set(c2, timeout=WAIT)
    assert [(m.repo, m.id) for m in members] == [(repo, c2), (name, c2)]
    out = cluster.inspect_commit(name, c2)
    assert {(p.repo, p.id) for p in out.direct_provenance} == {
        (repo, c2),
        (f"{name}.spec", info.spec_commit),  # the spec under its older ID
    }
    assert [f.path for f in cluster.walk_files(name, c2)] == ["/a/1", "/b/1", "/c/1"]
    job = cluster.inspect_job(name, c2)
    assert (job.state, job.data_total, job.data_processed, job.data_skipped) == ("success", 3, 1, 2)
    assert sorted(d.state for d in cluster.list_datums(name, c2)) == [
        "skipped",
        "skipped",
        "success",
    ]
    spec = json.loads(cluster.get_file(f"{name}.spec", info.spec_commit, "/spec.json"))
    assert spec["pipeline"]["name"] == name
    assert c1 in {p.id for p in cluster.provenance(cluster.inspect_commit(name, info.spec_commit))}


@needs_image
@pytest.mark.skipif(
    bool(ADDRESS and IMAGE) and not SEED,
    reason="set TULIP_LIVE_SEED=1 to run the seed story (it creates flower_photos and the pipelines)",
)
@pytest.mark.slow
def test_the_seed_story(cluster, tmp_path):
    from auditor.blame import blame
    from pipelines.deploy import bundled_specs, deploy

    existing = {r.name for r in cluster.list_repos()} | {p.name for p in cluster.list_pipelines()}
    ours = {"flower_photos", "label_reference", "Embed", "Train", "Tensorboard", "Audit", "Convert"}
    if existing & ours:
        pytest.skip(
            f"the cluster already has {', '.join(sorted(existing & ours))}; use an empty one"
        )
    deploy(cluster, bundled_specs(), image=IMAGE)

    def photos(cls: str, n: int, into: str) -> dict[str, bytes]:
        files = sorted((FLOWERS / cls).glob("*.jpg"))[:n]
        return {f"/{into}/{f.name}": f.read_bytes() for f in files}

    put(cluster, "label_reference", photos("tulips", 10, "tulips"))
    first = put(
        cluster,
        "flower_photos",
        {
            k: v
            for c in ("daisy", "dandelion", "roses", "sunflowers")
            for k, v in photos(c, 15, c).items()
        },
    )
    cluster.wait_commit_set(first, timeout=WAIT)
    labels = cluster.get_file(
        "Train", cluster.resolve("Train@master").id, "/retrained_labels.txt"
    ).decode()
    assert labels.split() == ["daisy", "dandelion", "roses", "sunflowers"]

    # The seed's bad commit: tulips filed as orchids.
    orchids = put(cluster, "flower_photos", photos("tulips", 15, "orchids"))
    cluster.wait_commit_set(orchids, timeout=WAIT)
    audit = json.loads(cluster.get_file("Audit", orchids, "/audit.json"))
    assert audit["verdict"] == "fail"
    assert any(
        f["check"] == "lookalike_class" and "tulips" in f["classes"] for f in audit["findings"]
    )
    convert = cluster.inspect_job("Convert", orchids)
    assert convert.state == "failure" and "gate blocked" in (convert.reason or "")
    report = blame(cluster, f"Convert@{orchids}")
    assert report.commits and report.commits[0].id == orchids
    assert [r.commit.id for r in cluster.find_commits("flower_photos", "master", "/orchids")] == [
        orchids
    ]
    try:
        from auditor.lineage.build import build_graph
        from auditor.lineage.graph import commit_node

        G = build_graph(cluster, include_files=False)
        assert commit_node("flower_photos", orchids) in G
    except ImportError:  # pragma: no cover - lineage is part of the project
        pass
    except TulipError as e:  # pragma: no cover
        pytest.fail(f"lineage over the cluster failed: {e}")
