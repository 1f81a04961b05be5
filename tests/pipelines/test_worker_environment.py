"""The stages that talk to pachd, run as a Pachyderm worker runs them: a subprocess with
exactly a worker's environment (``PACHD_PEER_SERVICE_HOST``/``_PORT``, ``PPS_*``, the
inputs' ``*_COMMIT``; no ``PACHD_ADDRESS``, no pachctl config), against the pachd double.

Before ``pipelines.connect.stage_backend`` knew a worker's environment, the Audit stage
exited 2 there with "no Pachyderm cluster configured" and wrote no audit.json."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from pipelines.pachyderm import PachydermBackend
from pipelines.records import EmbeddingRecord, record_path
from tests.auditor.synthetic import make
from tests.pachyderm_double import PachdProtocolDouble
from tests.pachyderm_double.worker import worker_environment


def _client_backend(pachd: PachdProtocolDouble) -> PachydermBackend:
    """The test's own view of the cluster (a user's, with an address)."""
    from pachyderm_sdk import Client

    b = PachydermBackend(Client.from_pachd_address(pachd.address), address=pachd.address)
    b.check()
    return b


def _put(b: PachydermBackend, files: dict[str, bytes], message: str) -> str:
    with b.start_commit("flower_photos", "master", description=message) as w:
        for path, data in files.items():
            w.put_bytes(path, data)
    return w.id


def _seed_story(pachd: PachdProtocolDouble, mounts: Path) -> tuple[str, str]:
    """flower_photos with daisies, roses and tulips, then a commit of "orchids" that are
    tulips; Embed's records of the second commit under ``mounts/Embed``, the photos under
    ``mounts/flower_photos``. Returns (first commit, orchids commit)."""
    before = make([("daisy", 0, 30), ("roses", 1, 30), ("tulips", 2, 30)])
    orchids = make([("orchids", 2, 30)], seed=7, prefix="new")
    b = _client_backend(pachd)
    try:
        b.create_repo("flower_photos")
        c1 = _put(b, {p: p.encode() for p in before.paths}, "daisies, roses, tulips")
        c2 = _put(b, {p: p.encode() for p in orchids.paths}, "orchids (really tulips)")
    finally:
        b.close()
    for s in (before, orchids):
        for path, label, digest, vec in zip(s.paths, s.labels, s.sha256, s.vectors, strict=True):
            record = EmbeddingRecord(
                path=path,
                label=label,
                sha256=digest,
                size=len(path),
                architecture=s.architecture,
                embedding=vec,
            )
            out = mounts / "Embed" / record_path(path).lstrip("/")
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(record.to_json())
            photo = mounts / "flower_photos" / path.lstrip("/")
            photo.parent.mkdir(parents=True, exist_ok=True)
            photo.write_bytes(path.encode())
    return c1, c2


def _run(module: str, args: list[str], env: dict[str, str], cwd: Path):
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _audit_args(mounts: Path) -> list[str]:
    return [
        "--embeddings", str(mounts / "Embed"),
        "--data", str(mounts / "flower_photos"),
        "--reference", str(mounts / "label_reference"),
        "--out", str(mounts / "out"),
    ]  # fmt: skip


def _env(pachd, tmp_path: Path, mounts: Path, commit: str, job: str) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = worker_environment(
        pachd,
        pipeline="Audit",
        job=job,
        inputs={
            "Embed": (mounts / "Embed", job),
            "flower_photos": (mounts / "flower_photos", commit),
        },
        home=home,
        spec_env={},
    )
    env["TULIP_CACHE_DIR"] = str(tmp_path / "cache")
    assert "PACHD_ADDRESS" not in env and "TULIP_ROOT" not in env and "PACH_CONFIG" not in env
    return env


@pytest.fixture
def story(tmp_path):
    with PachdProtocolDouble(auto_run=False) as pachd:
        mounts = tmp_path / "pfs"
        first, orchids = _seed_story(pachd, mounts)
        yield pachd, mounts, first, orchids


def test_the_audit_stage_reaches_pachd_from_a_workers_environment(story, tmp_path):
    pachd, mounts, first, orchids = story
    job = uuid.uuid4().hex
    env = _env(pachd, tmp_path, mounts, orchids, job)
    proc = _run("auditor.stage", _audit_args(mounts), env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "audit fail" in proc.stderr.splitlines()[-1]

    doc = json.loads((mounts / "out" / "audit.json").read_text())
    assert doc["verdict"] == "fail"
    assert doc["data"] == {"repo": "flower_photos", "branch": "master", "commit": orchids}
    overlap = [f for f in doc["findings"] if f["check"] == "class_overlap"]
    assert overlap and set(overlap[0]["classes"]) == {"orchids", "tulips"}
    # blame came from the cluster's history: the tulips with the first commit, the orchids
    # with the second (a stage with no store leaves introduced_by empty)
    assert {c["commit"] for c in overlap[0]["introduced_by"]} == {first, orchids}

    # the verdict reached the data commit's metadata, through EditMetadata on pachd
    assert "/metadata.API/EditMetadata" in pachd.calls
    b = _client_backend(pachd)
    try:
        meta = b.inspect_commit("flower_photos", orchids).metadata
        assert meta["tulip.verdict"] == "fail"
        assert meta["tulip.audit"] == f"Audit@{job}"
        assert "tulip.verdict" not in b.inspect_commit("flower_photos", first).metadata
    finally:
        b.close()


@pytest.mark.parametrize(
    ("version", "feature", "floor"),
    [((2, 9, 3), "EditMetadata", "2.10"), ((2, 7, 1), "CreatePipelineV2", "2.8")],
)
def test_an_older_pachd_is_refused_naming_the_feature_and_the_release(
    story, tmp_path, version, feature, floor
):
    pachd, mounts, _first, orchids = story
    pachd.version = version  # the same data, on an older release
    env = _env(pachd, tmp_path, mounts, orchids, uuid.uuid4().hex)
    proc = _run("auditor.stage", _audit_args(mounts), env, tmp_path)
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    dotted = ".".join(map(str, version))
    assert feature in last and f"pachd {floor}" in last and dotted in last, last
    assert not (mounts / "out" / "audit.json").exists()
    assert "/metadata.API/EditMetadata" not in pachd.calls  # refused before it was sent


def test_the_report_stage_draws_the_lineage_from_the_cluster(story, tmp_path):
    pachd, mounts, _first, orchids = story
    job = uuid.uuid4().hex
    env = _env(pachd, tmp_path, mounts, orchids, job)
    assert _run("auditor.stage", _audit_args(mounts), env, tmp_path).returncode == 0
    calls_before = len(pachd.calls)
    proc = _run(
        "reports.standalone",
        [
            "--audit", str(mounts / "out" / "audit.json"),
            "--data", str(mounts / "flower_photos"),
            "--out", str(mounts / "out" / "report.html"),
        ],
        env,
        tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "lineage" not in proc.stderr  # no "report.html will have no lineage" warning
    html = (mounts / "out" / "report.html").read_text()
    assert orchids[:12] in html and "<svg" in html
    assert any(c.startswith("/pfs_v2.API/ListCommit") for c in pachd.calls[calls_before:])
