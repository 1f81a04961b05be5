"""`tulip deploy`: the real CLI in a subprocess, against the pachd protocol double."""

from __future__ import annotations

import json
import time

import pytest

from pipelines import specs as specmod
from pipelines.deploy import bundled_specs, data_repos, deploy, order
from pipelines.errors import InvalidSpec, PipelineCycle
from pipelines.pachyderm import PachydermBackend
from tests.pachyderm_double import PachdProtocolDouble


@pytest.fixture
def pachd():
    with PachdProtocolDouble(auto_run=False) as d:
        yield d


@pytest.fixture
def cluster(pachd, monkeypatch):
    monkeypatch.setenv("PACHD_ADDRESS", pachd.address)
    b = PachydermBackend.from_environment()
    yield b
    b.close()


def bundled_names() -> list[str]:
    return [specmod.spec_name(specmod.normalize(raw, local=False)) for _, raw in bundled_specs()]


def test_deploy_creates_repos_then_pipelines_upstream_first(tulip_cli, pachd, cluster):
    env = {"PACHD_ADDRESS": pachd.address}
    proc = tulip_cli("deploy", "--image", "registry.example/tulip:test", "-o", "json", env=env)
    steps = json.loads(proc.stdout)
    repos = [s["name"] for s in steps if s["kind"] == "repo"]
    pipelines = [s["name"] for s in steps if s["kind"] == "pipeline"]
    assert "flower_photos" in repos and all(s["action"] == "create" for s in steps)
    assert sorted(pipelines) == sorted(bundled_names())
    assert pipelines.index("Embed") < pipelines.index("Train") < pipelines.index("Convert")
    for name in pipelines:
        info = cluster.inspect_pipeline(name)
        assert info.spec["transform"]["image"] == "registry.example/tulip:test"
    assert {r.name for r in cluster.list_repos()} >= {*repos, *pipelines}
    assert "/pps_v2.API/CreatePipelineV2" in pachd.calls

    again = json.loads(
        tulip_cli("deploy", "--image", "registry.example/tulip:test", "-o", "json", env=env).stdout
    )
    assert {s["action"] for s in again} == {"exists", "unchanged"}
    rolled = json.loads(
        tulip_cli("deploy", "--image", "registry.example/tulip:v2", "-o", "json", env=env).stdout
    )
    assert {s["action"] for s in rolled if s["kind"] == "pipeline"} == {"update"}
    assert cluster.inspect_pipeline("Train").version == 2
    assert (
        cluster.inspect_pipeline("Train").spec["transform"]["image"] == "registry.example/tulip:v2"
    )


def test_dry_run_creates_nothing(tulip_cli, pachd, cluster):
    proc = tulip_cli(
        "deploy", "--image", "r/tulip:1", "--dry-run", env={"PACHD_ADDRESS": pachd.address}
    )
    assert b"would create" in proc.stdout and b"Embed" in proc.stdout
    assert cluster.list_repos(include_specs=True) == [] and cluster.list_pipelines() == []
    err = proc.stderr.decode()
    # Embed reads flower_photos, which the dry run did not create: pachd could not judge it
    assert "not checked: pachd's validation of Embed" in err
    assert "not checked: that the cluster's nodes can pull the image" in err


def test_dry_run_asks_the_cluster_when_the_inputs_exist(pachd, cluster):
    cluster.create_repo("flower_photos")
    spec = {
        "pipeline": {"name": "Copy"},
        "transform": {"cmd": ["true"]},
        "input": {"pfs": {"repo": "flower_photos", "glob": "/"}},
    }
    [repo, step] = deploy(cluster, [("copy.json", spec)], image="r/t:1", dry_run=True)
    assert (repo.action, step.action) == ("exists", "would create")
    assert "validated by the backend" in step.detail
    assert cluster.list_pipelines() == []


def test_dry_run_without_a_cluster_validates_offline_and_says_what_it_did_not_check(tulip_cli):
    env = {"PACHD_ADDRESS": "grpc://127.0.0.1:1"}
    proc = tulip_cli("deploy", "--image", "r/tulip:1", "--dry-run", "-o", "json", env=env)
    steps = json.loads(proc.stdout)
    pipelines = [s["name"] for s in steps if s["kind"] == "pipeline"]
    assert sorted(pipelines) == sorted(bundled_names())
    assert pipelines.index("Embed") < pipelines.index("Audit") < pipelines.index("Convert")
    assert {s["checked_by"] for s in steps} == {"offline"}
    assert {s["action"] for s in steps if s["kind"] == "pipeline"} == {"would create or update"}
    err = proc.stderr.decode()
    assert "no cluster reached" in err and "cannot reach pachd" in err
    for line in ("pachd's own validation", "pachd's version", "can pull the image"):
        assert any(ln.startswith("not checked: ") and line in ln for ln in err.splitlines()), err
    # a bad spec is still refused offline, before any cluster is asked
    bad = tulip_cli.root.parent / "bad.json"
    bad.write_text(json.dumps({"pipeline": {"name": "X"}, "transfrom": {}}))
    proc = tulip_cli(
        "deploy", "--image", "r/t:1", "--dry-run", "-f", str(bad), check=False, env=env
    )
    assert proc.returncode == 2 and "transfrom" in proc.stderr.decode()
    assert "cannot reach pachd" not in proc.stderr.decode()


def test_the_placeholder_image_of_the_specs_is_refused(tulip_cli):
    proc = tulip_cli(
        "deploy", "--image", "tulip/tulip:0.1.0", "--dry-run", check=False,
        env={"PACHD_ADDRESS": "grpc://127.0.0.1:1"},
    )  # fmt: skip
    assert proc.returncode == 2
    assert "placeholder" in proc.stderr.decode() and "docker build" in proc.stderr.decode()


def test_an_unreachable_cluster_fails_fast_with_exit_code_2(tulip_cli):
    t0 = time.monotonic()
    proc = tulip_cli(
        "deploy", "--image", "r/t:1", check=False, env={"PACHD_ADDRESS": "grpc://127.0.0.1:1"}
    )
    assert proc.returncode == 2
    assert "cannot reach pachd" in proc.stderr.decode()
    assert time.monotonic() - t0 < 15  # includes starting the interpreter


def test_order_and_data_repos():
    specs = [
        {"pipeline": {"name": "B"}, "input": {"pfs": {"repo": "A", "glob": "/"}}},
        {
            "pipeline": {"name": "A"},
            "input": {
                "cross": [
                    {"pfs": {"repo": "raw", "glob": "/*"}},
                    {"pfs": {"repo": "ref", "glob": "/"}},
                ]
            },
        },
    ]
    assert [specmod.spec_name(s) for s in order(specs)] == ["A", "B"]
    assert data_repos(specs) == ["raw", "ref"]
    loop = [
        {"pipeline": {"name": "A"}, "input": {"pfs": {"repo": "B", "glob": "/"}}},
        {"pipeline": {"name": "B"}, "input": {"pfs": {"repo": "A", "glob": "/"}}},
    ]
    with pytest.raises(PipelineCycle, match="cycle"):
        order(loop)


def test_a_bad_spec_or_image_is_named(cluster):
    with pytest.raises(InvalidSpec, match=r"bad\.json: .*transfrom"):
        deploy(cluster, [("bad.json", {"pipeline": {"name": "X"}, "transfrom": {}})], image="r/t:1")
    for image in ("not an image", "Registry/UPPER:1", "r/t:bad tag", ""):
        with pytest.raises(InvalidSpec, match="--image"):
            deploy(cluster, bundled_specs(), image=image)
    assert cluster.list_repos() == []  # refused before anything was created
    for image in (
        "tulip:0.1.0",
        "localhost:5000/team/tulip:v2",
        "ghcr.io/o/tulip@sha256:" + "a" * 64,
    ):
        assert [s.action for s in deploy(cluster, bundled_specs(), image=image, dry_run=True)]
