import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request

import pytest

from pipelines.embedded.store import EmbeddedStore


def put(store, repo, files, *, deletes=()):
    with store.start_commit(repo) as w:
        for p in deletes:
            w.delete(p)
        for p, data in files.items():
            w.put_bytes(p, data)
    return store.resolve(f"{repo}@master")


def pipeline(name, input_, stdin, **extra):
    return {
        "pipeline": {"name": name},
        "transform": {"cmd": ["bash"], "stdin": stdin},
        "input": input_,
        **extra,
    }


def pfs(repo, glob="/", **kw):
    return {"pfs": {"repo": repo, "glob": glob, **kw}}


def out_files(store, repo, ref="master"):
    c = store.resolve(f"{repo}@{ref}")
    return {f.path: store.get_file(repo, c.id, f.path) for f in store.walk_files(repo, c.id)}


def test_chain_of_three_pipelines_shares_one_commit_set_with_provenance(store, run_jobs):
    store.create_repo("data")
    put(store, "data", {"/a.txt": b"hello"})
    store.create_pipeline(
        pipeline("Up", pfs("data"), ["tr a-z A-Z < /pfs/data/a.txt > /pfs/out/a.txt"])
    )
    store.create_pipeline(pipeline("Mid", pfs("Up"), ["rev /pfs/Up/a.txt > /pfs/out/b.txt"]))
    store.create_pipeline(pipeline("Down", pfs("Mid"), ["wc -c < /pfs/Mid/b.txt > /pfs/out/n"]))
    run_jobs(store)
    c = put(store, "data", {"/a.txt": b"tulips"})
    jobs = run_jobs(store)
    assert [(j.pipeline, j.state) for j in jobs] == [
        ("Up", "success"),
        ("Mid", "success"),
        ("Down", "success"),
    ]
    assert {x.repo for x in store.commit_set(c.id)} == {"data", "Up", "Mid", "Down"}
    assert out_files(store, "Mid") == {"/b.txt": b"SPILUT"}
    down = store.resolve("Down@master")
    assert down.id == c.id and down.origin == "AUTO"
    direct = {(p.repo, p.id) for p in down.direct_provenance}
    assert ("Mid", c.id) in direct
    assert any(p.repo == "Down.spec" for p in down.direct_provenance)
    transitive = {(p.repo, p.id) for p in store.provenance(down)}
    assert {("Up", c.id), ("data", c.id)} <= transitive
    assert {(s.repo, s.id) for s in store.subvenance("data", c.id)} == {("Up", c.id)}


def test_unchanged_input_appears_under_its_older_id(store, run_jobs):
    store.create_repo("images")
    store.create_repo("labels")
    old_labels = put(store, "labels", {"/l.txt": b"daisy"})
    put(store, "images", {"/1.jpg": b"x"})
    store.create_pipeline(
        pipeline(
            "Both",
            {"cross": [pfs("images"), pfs("labels")]},
            ["ls /pfs/images /pfs/labels > /pfs/out/ls"],
        )
    )
    run_jobs(store)
    new = put(store, "images", {"/2.jpg": b"y"})
    run_jobs(store)
    prov = {p.repo: p.id for p in store.resolve("Both@master").direct_provenance}
    assert prov["images"] == new.id
    assert prov["labels"] == old_labels.id


def test_cross_input_datums_and_env(store, run_jobs):
    store.create_repo("a")
    store.create_repo("b")
    put(store, "a", {"/1": b"1", "/2": b"2"})
    put(store, "b", {"/x": b"x", "/y": b"y", "/z": b"z"})
    store.create_pipeline(
        pipeline(
            "Cross",
            {"cross": [pfs("a", "/*"), pfs("b", "/*")]},
            ['echo "$a_COMMIT $b_COMMIT $PACH_JOB_ID" > /pfs/out/$(ls /pfs/a)$(ls /pfs/b)'],
        )
    )
    [job] = run_jobs(store)
    assert (job.data_total, job.data_processed) == (6, 6)
    files = out_files(store, "Cross")
    assert sorted(files) == ["/1x", "/1y", "/1z", "/2x", "/2y", "/2z"]
    a_id, b_id = store.resolve("a@master").id, store.resolve("b@master").id
    assert files["/1x"].decode().split() == [a_id, b_id, job.id]


def test_incremental_processing_skips_unchanged_datums_and_carries_outputs(store, run_jobs):
    store.create_repo("photos")
    put(store, "photos", {f"/c/{i}.jpg": str(i).encode() for i in range(20)})
    store.create_pipeline(
        pipeline(
            "Each",
            pfs("photos", "/*/*"),
            ["for f in /pfs/photos/c/*; do cp $f /pfs/out/$(basename $f).out; done"],
        )
    )
    [first] = run_jobs(store)
    assert (first.data_processed, first.data_skipped, first.data_total) == (20, 0, 20)
    put(store, "photos", {"/c/new.jpg": b"new"})
    [second] = run_jobs(store)
    assert (second.data_processed, second.data_skipped, second.data_total) == (1, 20, 21)
    assert len(out_files(store, "Each")) == 21
    put(store, "photos", {}, deletes=["/c/3.jpg"])
    [third] = run_jobs(store)
    assert (third.data_processed, third.data_skipped, third.data_total) == (0, 20, 20)
    assert "/3.jpg.out" not in out_files(store, "Each")


def test_changing_the_transform_reprocesses_but_a_description_does_not(store, run_jobs):
    store.create_repo("d")
    put(store, "d", {"/1": b"1", "/2": b"2"})
    spec = pipeline("P", pfs("d", "/*"), ["cp /pfs/d/* /pfs/out/"])
    store.create_pipeline(spec)
    run_jobs(store)
    store.create_pipeline({**spec, "description": "same work"}, update=True)
    [job] = run_jobs(store)
    assert (job.data_processed, job.data_skipped) == (0, 2)
    store.create_pipeline(
        pipeline("P", pfs("d", "/*"), ["cp /pfs/d/* /pfs/out/; echo v2 >> /pfs/out/$(ls /pfs/d)"]),
        update=True,
    )
    [job] = run_jobs(store)
    assert (job.data_processed, job.data_skipped) == (2, 0)
    assert store.inspect_pipeline("P").version == 3


def test_datum_tries_retry_a_flaky_datum(store, run_jobs, tmp_path):
    store.create_repo("d")
    put(store, "d", {"/1": b"1"})
    marker = tmp_path / "tried"
    store.create_pipeline(
        pipeline(
            "Flaky",
            pfs("d"),
            [
                f"if [ ! -e {marker} ]; then touch {marker}; echo 'first try fails' >&2; exit 1; fi",
                "cp /pfs/d/1 /pfs/out/1",
            ],
            datumTries=2,
        )
    )
    [job] = run_jobs(store)
    assert job.state == "success"
    [datum] = store.list_datums("Flaky", job.id)
    assert datum.tries == 2 and datum.state == "success"
    assert "first try fails" in store.logs("Flaky", job.id)


def test_a_gate_blocked_datum_is_not_retried(store, run_jobs, tmp_path):
    store.create_repo("d")
    put(store, "d", {"/1": b"1"})
    tries = tmp_path / "tries"
    store.create_pipeline(
        pipeline(
            "Blocked",
            pfs("d"),
            [f"echo try >> {tries}", "echo 'gate blocked: the audit failed' >&2", "exit 3"],
            datumTries=3,
        )
    )
    [job] = run_jobs(store)
    assert job.state == "failure" and "gate blocked" in job.reason
    [datum] = store.list_datums("Blocked", job.id)
    assert datum.tries == 1
    assert tries.read_text().splitlines() == ["try"]


def test_failed_job_keeps_last_good_output_and_downstream_is_unrunnable(store, run_jobs):
    store.create_repo("d")
    put(store, "d", {"/ok": b"1"})
    store.create_pipeline(
        pipeline(
            "Gate",
            pfs("d"),
            [
                "if [ -e /pfs/d/bad ]; then echo 'gate blocked: the data is bad' >&2; exit 3; fi",
                "cp /pfs/d/ok /pfs/out/model",
            ],
            datumTries=1,
        )
    )
    store.create_pipeline(pipeline("After", pfs("Gate"), ["cp /pfs/Gate/model /pfs/out/"]))
    run_jobs(store)
    good = store.resolve("Gate@master")
    bad = put(store, "d", {"/bad": b"x"})
    jobs = {j.pipeline: j for j in run_jobs(store)}
    assert jobs["Gate"].state == "failure"
    assert "gate blocked: the data is bad" in jobs["Gate"].reason
    assert jobs["After"].state == "unrunnable"
    head = store.resolve("Gate@master")
    assert head.id == bad.id and head.error and "gate blocked" in head.error
    assert out_files(store, "Gate") == {"/model": b"1"}  # the last good model stays at the head
    assert store.get_file("Gate", good.id, "/model") == b"1"
    events = [(e.type, e.subject) for e in store.outbox.newest()]
    assert ("job.failed", f"Gate@{bad.id}") in events


def test_datums_writing_the_same_path_fail_the_job(store, run_jobs):
    store.create_repo("d")
    put(store, "d", {"/1": b"1", "/2": b"2"})
    store.create_pipeline(pipeline("Clash", pfs("d", "/*"), ["cat /pfs/d/* > /pfs/out/same"]))
    [job] = run_jobs(store)
    assert job.state == "failure" and "both wrote /same" in job.reason


BATCH_STAGE = textwrap.dedent("""
    from pipelines.worker import run_batched
    def process(batch):
        for d in batch:
            for f in d.files():
                rel = d.relpath(f)
                if f.read_bytes() == b"bad":
                    d.fail(f"{rel} is bad")
                    continue
                target = d.out / (rel.strip("/") + ".len")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(str(len(f.read_bytes())))
                d.log(f"did {rel}")
    run_batched(process, batch_size=4)
""")


def test_datum_batching_runs_one_process_for_many_datums(store, run_jobs, tmp_path):
    script = tmp_path / "stage.py"
    script.write_text(BATCH_STAGE)
    store.create_repo("d")
    put(store, "d", {f"/c/{i}": b"x" * i for i in range(1, 11)})
    spec = {
        "pipeline": {"name": "Batch"},
        "transform": {"cmd": [sys.executable, str(script)], "datumBatching": True},
        "input": pfs("d", "/*/*"),
    }
    store.create_pipeline(spec)
    [job] = run_jobs(store)
    assert (job.state, job.data_processed, job.data_total) == ("success", 10, 10)
    assert out_files(store, "Batch")["/c/7.len"] == b"7"
    put(store, "d", {"/c/bad": b"bad", "/c/11": b"x" * 11})
    [job] = run_jobs(store)
    assert job.state == "failure" and "/c/bad is bad" in job.reason
    assert (job.data_processed, job.data_skipped, job.data_failed) == (1, 10, 1)
    datum_logs = store.logs("Batch", job.id)
    assert "did /c/11" in datum_logs


def test_service_pipeline_runs_and_stops(store, run_jobs):
    from pipelines.embedded.services import port_free

    store.create_repo("site")
    put(store, "site", {"/index.html": b"<h1>tulip</h1>"})
    store.create_pipeline(
        {
            "pipeline": {"name": "Web"},
            "transform": {
                "cmd": [
                    sys.executable,
                    "-m",
                    "http.server",
                    "6016",
                    "--bind",
                    "127.0.0.1",
                    "--directory",
                    "/pfs/site",
                ]
            },
            "service": {"internalPort": 6016, "externalPort": 30016},
            "input": pfs("site"),
        }
    )
    try:
        [job] = run_jobs(store)
        assert job.state == "success"
        url = store.inspect_pipeline("Web").service_url
        assert url and url.startswith("http://127.0.0.1:")
        for _ in range(50):
            try:
                body = urllib.request.urlopen(url + "/index.html", timeout=2).read()
                break
            except OSError:
                time.sleep(0.1)
        assert body == b"<h1>tulip</h1>"
        port = int(url.rsplit(":", 1)[1])
    finally:
        assert store.stop_service("Web")
    assert store.inspect_pipeline("Web").service_url is None
    time.sleep(0.3)
    assert port_free(port)


def test_background_runner_and_wait_commit(tmp_path, monkeypatch):
    monkeypatch.delenv("TULIP_NO_AUTORUN", raising=False)
    store = EmbeddedStore(tmp_path / "s")
    store.create_repo("d")
    store.create_pipeline(pipeline("Slow", pfs("d", "/*"), ["sleep 0.2; cp /pfs/d/* /pfs/out/"]))
    c = put(store, "d", {f"/{i}": b"1" for i in range(5)})
    commits = store.wait_commit_set(c.id, timeout=120)
    assert all(x.finished for x in commits)
    assert store.inspect_job("Slow", c.id).state == "success"
    assert len(out_files(store, "Slow")) == 5
    store.close()


def test_killed_runner_loses_no_finished_datum(tmp_path, monkeypatch):
    monkeypatch.setenv("TULIP_NO_AUTORUN", "1")
    root = tmp_path / "s"
    env = {**os.environ, "TULIP_NO_AUTORUN": "1"}
    store = EmbeddedStore(root)
    store.create_repo("d")
    put(store, "d", {f"/{i:02d}": b"1" for i in range(12)})
    store.create_pipeline(pipeline("Slow", pfs("d", "/*"), ["sleep 0.4; cp /pfs/d/* /pfs/out/"]))
    job_id = store.resolve("Slow@master").id
    runner = subprocess.Popen(
        [sys.executable, "-m", "pipelines.runner", "--root", str(root)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        done = store.db.execute(
            "SELECT COUNT(*) FROM datum_results WHERE pipeline = 'Slow'"
        ).fetchone()[0]
        if done >= 4:
            break
        time.sleep(0.05)
    os.killpg(runner.pid, signal.SIGKILL)
    runner.wait()
    assert store.inspect_job("Slow", job_id).state == "running"
    second = subprocess.run(
        [sys.executable, "-m", "pipelines.runner", "--root", str(root)],
        env=env,
        capture_output=True,
        timeout=120,
        text=True,
    )
    job = store.inspect_job("Slow", job_id)
    assert second.returncode == 0, second.stdout + second.stderr
    assert job.state == "success" and job.data_total == 12, second.stdout + second.stderr
    assert job.data_recovered >= 4 and job.data_processed + job.data_recovered == 12
    assert len(out_files(store, "Slow")) == 12
    assert store.fsck() == []
    store.close()


def test_delete_commit_removes_downstream_commits_too(store, run_jobs):
    store.create_repo("d")
    c1 = put(store, "d", {"/1": b"1"})
    store.create_pipeline(pipeline("P", pfs("d"), ["cp /pfs/d/1 /pfs/out/"]))
    run_jobs(store)
    c2 = put(store, "d", {"/1": b"2"})
    run_jobs(store)
    deleted = {(d.repo, d.id) for d in store.delete_commit("d", c2.id)}
    assert deleted == {("d", c2.id), ("P", c2.id)}
    assert store.resolve("d@master").id == c1.id
    assert out_files(store, "P") == {"/1": b"1"}
    assert store.fsck() == []


def test_pipeline_graph_must_stay_a_dag(store):
    from pipelines.errors import InvalidSpec, PipelineCycle

    store.create_repo("d")
    store.create_pipeline(pipeline("A", pfs("d"), ["true"]))
    store.create_pipeline(pipeline("B", pfs("A"), ["true"]))
    with pytest.raises(PipelineCycle, match="DAG"):
        store.create_pipeline(pipeline("A", pfs("B"), ["true"]), update=True)
    with pytest.raises(PipelineCycle):
        store.create_pipeline(pipeline("C", pfs("C"), ["true"]))
    with pytest.raises(InvalidSpec, match="does not exist"):
        store.create_pipeline(pipeline("D", pfs("nope"), ["true"]))
    assert store.create_pipeline(pipeline("E", pfs("d"), ["true"]), dry_run=True).state == "dry-run"
    assert [p.name for p in store.list_pipelines()] == ["A", "B"]


def test_spec_commits_hold_the_spec(store):
    store.create_repo("d")
    info = store.create_pipeline(pipeline("A", pfs("d"), ["true"]))
    spec = json.loads(store.get_file("A.spec", info.spec_commit, "/spec.json"))
    assert spec["pipeline"]["name"] == "A"
    assert "A.spec" in [r.name for r in store.list_repos(include_specs=True)]
    assert "A.spec" not in [r.name for r in store.list_repos()]


def test_a_finished_jobs_scratch_tree_is_put_aside_and_a_dead_runners_is_swept(store, run_jobs):
    store.create_repo("data")
    put(store, "data", {f"/{i}.txt": b"x" for i in range(20)})
    store.create_pipeline(pipeline("Copy", pfs("data", "/*"), ["cp /pfs/data/* /pfs/out/"]))
    [job] = run_jobs(store)
    assert job.state == "success" and len(out_files(store, "Copy")) == 20
    work = store.jobs.root / "work"
    assert not (work / "Copy" / job.id).exists()  # renamed aside before the job finished
    deadline = time.monotonic() + 10  # and deleted by a background thread
    while any((work / ".trash").iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any((work / ".trash").iterdir())
    left = work / ".trash" / "Copy-dead-runner"
    (left / "datum" / "pfs").mkdir(parents=True)
    (left / "datum" / "pfs" / "f").write_bytes(b"left by a runner killed mid-delete")
    store.jobs.recover()
    while left.exists() and time.monotonic() < deadline + 10:
        time.sleep(0.05)
    assert not left.exists()
