"""O(changed) scheduling: bulk glob matching, set-based lookups, carry-over as a delta."""

import sys
import textwrap

import pytest

from pipelines.datums import InputFile, enumerate_datums, match_glob
from pipelines.embedded.jobs import JobQueue
from tests.pipelines.test_runner import out_files, pfs, put

# Each datum writes <name>.len; a file holding "bad" fails its datum; every datum also writes
# /shared.txt with the same content (a path many datums share, as Pachyderm allows).
STAGE = textwrap.dedent("""
    from pipelines.worker import run_batched
    def process(batch):
        for d in batch:
            for f in d.files():
                rel = d.relpath(f)
                if f.read_bytes() == b"bad":
                    d.fail(f"{rel} is bad")
                    continue
                (d.out / (rel.strip("/").replace("/", "_") + ".len")).write_text(
                    str(len(f.read_bytes()))
                )
                (d.out / "shared.txt").write_text("same")
    run_batched(process, batch_size=8)
""")


@pytest.fixture
def each(store, tmp_path):
    script = tmp_path / "stage.py"
    script.write_text(STAGE)
    store.create_repo("d")
    return {
        "pipeline": {"name": "Each"},
        "transform": {"cmd": [sys.executable, str(script)], "datumBatching": True},
        "input": pfs("d", "/*/*"),
    }


def expected(store):
    """What the output must hold: one .len per file at the head of d, plus shared.txt."""
    head = store.resolve("d@master")
    want = {
        "/" + f.path.strip("/").replace("/", "_") + ".len": str(f.size).encode()
        for f in store.walk_files("d", head.id)
    }
    return {**want, "/shared.txt": b"same"} if want else {}


def test_carry_over_is_a_delta_and_matches_a_full_rebuild(store, run_jobs, each, monkeypatch):
    put(store, "d", {f"/c/{i}": b"x" * i for i in range(1, 31)})
    store.create_pipeline(each)
    [first] = run_jobs(store)
    assert first.state == "success" and out_files(store, "Each") == expected(store)

    # From here on every output commit must be built from its parent plus the changed datums.
    def no_full_rebuild(self, conn, job):
        raise AssertionError(f"job {job.pipeline}@{job.id} rewrote every output")

    monkeypatch.setattr(JobQueue, "_write_all", no_full_rebuild)
    put(store, "d", {"/c/new": b"new!", "/c/5": b"changed"}, deletes=["/c/7"])
    [second] = run_jobs(store)
    assert (second.state, second.data_processed, second.data_skipped) == ("success", 2, 28)
    assert out_files(store, "Each") == expected(store)

    # A failed job keeps the last good output; the next job builds on what that output holds.
    put(store, "d", {"/c/bad": b"bad", "/c/more": b"more"})
    [failed] = run_jobs(store)
    assert failed.state == "failure"
    put(store, "d", {}, deletes=["/c/bad", "/c/1"])
    [third] = run_jobs(store)
    assert third.state == "success" and third.data_processed == 0  # /c/more ran already
    assert out_files(store, "Each") == expected(store)
    assert store.fsck() == []  # sizes recorded for the delta commits add up


def test_deleting_every_input_empties_the_output(store, run_jobs, each):
    put(store, "d", {"/c/1": b"a", "/c/2": b"bb"})
    store.create_pipeline(each)
    run_jobs(store)
    put(store, "d", {}, deletes=["/c"])
    [job] = run_jobs(store)
    assert job.state == "success" and out_files(store, "Each") == {}
    assert store.fsck() == []


def test_a_changed_datum_that_clashes_with_a_carried_one_fails_the_job(store, run_jobs, tmp_path):
    script = tmp_path / "clash.py"
    script.write_text(
        textwrap.dedent("""
        from pipelines.worker import run_batched
        def process(batch):
            for d in batch:
                for f in d.files():
                    (d.out / "all.txt").write_bytes(f.read_bytes())
        run_batched(process)
    """)
    )
    store.create_repo("d")
    put(store, "d", {"/c/1": b"same", "/c/2": b"same"})
    store.create_pipeline(
        {
            "pipeline": {"name": "Clash"},
            "transform": {"cmd": [sys.executable, str(script)], "datumBatching": True},
            "input": pfs("d", "/*/*"),
        }
    )
    [ok] = run_jobs(store)
    assert ok.state == "success" and out_files(store, "Clash") == {"/all.txt": b"same"}
    put(store, "d", {"/c/3": b"other"})
    [job] = run_jobs(store)
    assert job.state == "failure" and "both wrote /all.txt" in job.reason
    assert out_files(store, "Clash") == {"/all.txt": b"same"}  # the last good output stays


def test_glob_matches_in_one_pass_with_files_under_each_match():
    files = [InputFile(f"/c{i % 7}/{i}.jpg", f"{i:x}", 1) for i in range(700)]
    files += [InputFile("/c1.txt", "t", 1), InputFile("/c1/sub/deep.jpg", "d", 1)]
    got = {m: [f.path for f in fs] for m, fs, _ in match_glob("/*/*", files)}
    assert len(got) == 701  # 700 images and the directory /c1/sub
    assert got["/c1/sub"] == ["/c1/sub/deep.jpg"]
    assert got["/c3/10.jpg"] == ["/c3/10.jpg"]
    top = {m: len(fs) for m, fs, _ in match_glob("/*", files)}
    assert top["/c1"] == 101 and top["/c1.txt"] == 1  # '/c1.txt' sorts inside '/c1...'
    assert [m for m, _, _ in match_glob("/**.jpg", files)][:2] == ["/c0/0.jpg", "/c0/105.jpg"]
    assert [m for m, _, _ in match_glob("/{c1/sub,c2/2.jpg}", files)] == ["/c1/sub", "/c2/2.jpg"]


def test_outer_join_makes_an_input_optional():
    node = {
        "join": [
            {"pfs": {"repo": "a", "glob": "/", "joinOn": "all", "outerJoin": True}},
            {"pfs": {"repo": "ref", "glob": "/", "joinOn": "all"}},
        ]
    }
    a = [InputFile("/x", "1", 1)]
    without = enumerate_datums(node, {"a": ("a", "c" * 32, a)})
    assert [[p.input for p in d.parts] for d in without] == [["a"]]
    with_ref = enumerate_datums(
        node, {"a": ("a", "c" * 32, a), "ref": ("ref", "d" * 32, [InputFile("/r", "2", 1)])}
    )
    assert [[p.input for p in d.parts] for d in with_ref] == [["a", "ref"]]
    # Without outerJoin the join is inner: a missing input means no datum.
    inner = {"join": [{"pfs": {**c["pfs"], "outerJoin": False}} for c in node["join"]]}
    assert enumerate_datums(inner, {"a": ("a", "c" * 32, a)}) == []
