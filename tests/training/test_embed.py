"""The Embed stage run through ``run_batched`` with an engine-style datum manifest."""

from __future__ import annotations

import hashlib
import json

import pytest

from pipelines.records import EmbeddingRecord
from pipelines.worker import DONE_MARKER, FAILED_MARKER
from tests.training.flowers import ARCH, BAD_REASONS, dirty_slice, embed_run, odd_but_fine_files


@pytest.fixture(scope="module")
def job():
    return embed_run()


def _records(job) -> dict[str, EmbeddingRecord]:
    recs = {}
    for p in (job / "out").rglob("*.json"):
        r = EmbeddingRecord.from_json(p.read_bytes())
        recs[r.path] = r
    return recs


def test_every_datum_succeeds_and_every_file_gets_one_record(job):
    controls = sorted((job / "control").iterdir())
    assert controls and all((c / DONE_MARKER).exists() for c in controls)
    assert not any((c / FAILED_MARKER).exists() for c in controls)
    files = sorted(
        "/" + p.relative_to(dirty_slice()).as_posix()
        for p in dirty_slice().glob("*/*")
        if p.is_file()
    )
    assert sorted(_records(job)) == files


def test_records_live_at_the_repo_path_in_their_own_datum_output(job):
    line = (job / "datums.jsonl").read_text().splitlines()[0]
    d = json.loads(line)
    inputs = d["inputs"]["flower_photos"]
    from pathlib import Path

    (src,) = [p for p in Path(inputs).rglob("*") if p.is_file()]
    rel = src.relative_to(inputs).as_posix()
    assert (Path(d["out"]) / (rel + ".json")).is_file()


@pytest.mark.parametrize("repo_path, reason", sorted(BAD_REASONS.items()))
def test_bad_files_become_unreadable_records_with_a_reason(job, repo_path, reason):
    r = _records(job)[repo_path]
    assert r.status == "unreadable" and r.embedding is None
    assert r.reason.startswith(reason), r.reason
    assert r.label == repo_path.split("/")[1]
    data = (dirty_slice() / repo_path.lstrip("/")).read_bytes()
    assert r.sha256 == hashlib.sha256(data).hexdigest() and r.size == len(data)


def test_good_and_awkward_images_get_embeddings(job):
    recs = _records(job)
    for rp in odd_but_fine_files():
        assert recs[rp].status == "ok", recs[rp].reason
    ok = [r for r in recs.values() if r.status == "ok"]
    assert len(ok) == 5 * 12 + 3
    assert all(r.architecture == ARCH and r.embedding.shape == (256,) for r in ok)
    assert recs["/sunflowers/cmyk.jpg"].image["mode"] == "CMYK"


def test_the_unreadable_reasons_are_logged_to_the_datum(job):
    logs = "".join(p.read_text() for p in (job / "control").rglob("log.txt"))
    assert "unreadable /tulips/bomb.png: decompression bomb" in logs
