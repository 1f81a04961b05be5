"""``--raw``: pachctl's protojson shape, parsed back by pachyderm-sdk's own messages.

The check is strict both ways: the document parses into the SDK's ``CommitInfo``/``FileInfo``/
``JobInfo``/``RepoInfo`` with the values Tulip's records hold, and the SDK writing that message
back (snake_case, defaults left out) gives exactly the document, so no key is unknown to the
proto, no int64 is a number, and no enum is lower-case.
"""

from __future__ import annotations

import base64
import json

import betterproto
import pytest
from click.testing import CliRunner
from pachyderm_sdk.api import pfs, pps

from tests.pipelines.test_runner import pfs as pfs_input
from tests.pipelines.test_runner import pipeline, put
from tulip.cli.base import Settings
from tulip.cli.main import cli as tulip_main


@pytest.fixture
def seeded(store, run_jobs):
    store.create_repo("images", description="photos")
    put(store, "images", {"/daisy/1.jpg": b"d1", "/daisy/2.jpg": b"d22"})
    store.create_pipeline(
        pipeline("Count", pfs_input("images", "/*"), ["cp -r /pfs/images/* /pfs/out/"])
    )
    run_jobs(store)
    put(store, "images", {"/roses/3.jpg": b"r333"})
    run_jobs(store)
    return store


def invoke(store, *args) -> str:
    result = CliRunner().invoke(
        tulip_main, ["--root", str(store.root), *args], obj=Settings(), catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result.stdout


def run(store, *args):
    lines = invoke(store, *args).splitlines()
    return [json.loads(line) for line in lines]  # one object per line, each a whole document


def roundtrip(message_type, doc):
    msg = message_type().from_dict(doc)
    assert msg.to_dict(casing=betterproto.Casing.SNAKE) == doc
    return msg


def test_commits_parse_as_pachyderm_commit_infos(seeded):
    ours = seeded.list_commits("images", "master")
    docs = run(seeded, "list", "commit", "images@master", "--raw")
    assert len(docs) == len(ours) == 2
    for doc, c in zip(docs, ours, strict=True):
        msg = roundtrip(pfs.CommitInfo, doc)
        assert msg.commit.id == c.id and msg.commit.repo.name == "images"
        assert msg.commit.repo.project.name == "default"
        assert msg.origin.kind == pfs.OriginKind.USER
        assert msg.details.size_bytes == c.size_bytes > 0
        assert doc["details"]["size_bytes"] == str(c.size_bytes)  # int64 is a string
        assert msg.started.timestamp() == pytest.approx(c.started, abs=1e-3)
    assert docs[0]["parent_commit"]["id"] == ours[1].id

    out = seeded.resolve("Count@master")
    (doc,) = run(seeded, "inspect", "commit", "Count@master", "--raw")
    msg = roundtrip(pfs.CommitInfo, doc)
    assert msg.origin.kind == pfs.OriginKind.AUTO and msg.commit.id == out.id
    assert {(p.repo.name, p.id) for p in msg.direct_provenance} == {
        (p.repo, p.id) for p in out.direct_provenance
    }


def test_files_parse_as_pachyderm_file_infos(seeded):
    c = seeded.resolve("images@master")
    docs = run(seeded, "list", "file", "images@master", "--raw")
    assert [(d["file"]["path"], d["file_type"]) for d in docs] == [
        ("/daisy/", "DIR"),
        ("/roses/", "DIR"),
    ]
    for doc in docs:
        assert roundtrip(pfs.FileInfo, doc).file_type == pfs.FileType.DIR
    (doc,) = run(seeded, "inspect", "file", "images@master:/daisy/2.jpg", "--raw")
    msg = roundtrip(pfs.FileInfo, doc)
    f = seeded.inspect_file("images", c.id, "/daisy/2.jpg")
    assert msg.file_type == pfs.FileType.FILE and msg.size_bytes == 3 and doc["size_bytes"] == "3"
    assert msg.file.commit.id == c.id and msg.file.path == "/daisy/2.jpg"
    assert msg.hash == bytes.fromhex(f.hash) == base64.b64decode(doc["hash"])


def test_jobs_parse_as_pachyderm_job_infos(seeded):
    ours = seeded.list_jobs("Count")
    docs = run(seeded, "list", "job", "-p", "Count", "--raw")
    assert len(docs) == len(ours) == 2
    for doc, j in zip(docs, ours, strict=True):
        msg = roundtrip(pps.JobInfo, doc)
        assert msg.job.id == j.id and msg.job.pipeline.name == "Count"
        assert msg.state == pps.JobState.JOB_SUCCESS and doc["state"] == "JOB_SUCCESS"
        assert msg.data_total == j.data_total and doc["data_total"] == str(j.data_total)
        assert msg.data_processed == j.data_processed
        assert msg.output_commit.repo.name == "Count"
    # the second job saw one new folder (roses) and skipped the one it had processed (daisy)
    assert (docs[0]["data_processed"], docs[0]["data_skipped"]) == ("1", "1")
    (doc,) = run(seeded, "inspect", "job", f"Count@{ours[0].id}", "--raw")
    assert roundtrip(pps.JobInfo, doc).job.id == ours[0].id


def test_repos_parse_as_pachyderm_repo_infos(seeded):
    docs = {d["repo"]["name"]: d for d in run(seeded, "list", "repo", "--raw")}
    assert {"images", "Count"} <= set(docs)
    msg = roundtrip(pfs.RepoInfo, docs["images"])
    assert msg.description == "photos" and msg.repo.type == "user"
    assert [b.name for b in msg.branches] == ["master"]
    (doc,) = run(seeded, "inspect", "repo", "images", "--raw")
    assert (
        roundtrip(pfs.RepoInfo, doc).details.size_bytes == seeded.inspect_repo("images").size_bytes
    )


def test_json_stays_tulips_friendly_shape(seeded):
    listing = json.loads(invoke(seeded, "list", "commit", "images@master", "-o", "json"))
    assert listing[0]["origin"] == "USER" and isinstance(listing[0]["size_bytes"], int)
