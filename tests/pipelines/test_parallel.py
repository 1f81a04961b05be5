"""Parallel datums: a job's datums are dealt over worker processes, as many as the spec's
parallelismSpec, the runner's --parallelism override, or else the cores."""

import os
import sys
import textwrap

import pytest

from pipelines.runner import Runner
from tests.pipelines.test_runner import out_files, pfs, put

STAGE = textwrap.dedent("""
    import os, time
    from pipelines.worker import run_batched
    if os.environ.get("TULIP_WORKER") == os.environ.get("FAIL_WORKER", "none"):
        raise SystemExit(5)
    def process(batch):
        for d in batch:
            time.sleep(0.05)
            for f in d.files():
                name = d.relpath(f).strip("/").replace("/", "_")
                (d.out / name).write_text(
                    f"{os.getpid()} {os.environ.get('TULIP_WORKER', '-')} "
                    f"{os.environ.get('TF_NUM_INTRAOP_THREADS', '-')}"
                )
    run_batched(process, batch_size=2)
""")


def batched(tmp_path, **extra):
    script = tmp_path / "stage.py"
    script.write_text(STAGE)
    return {
        "pipeline": {"name": "Par"},
        "transform": {"cmd": [sys.executable, str(script)], "datumBatching": True},
        "input": pfs("d", "/*/*"),
        **extra,
    }


def workers_seen(store):
    return {tuple(v.decode().split()[:2]) for v in out_files(store, "Par").values()}


def test_batched_datums_run_in_as_many_processes_as_the_spec_asks(store, tmp_path):
    store.create_repo("d")
    put(store, "d", {f"/c/{i}": b"x" for i in range(9)})
    store.create_pipeline(batched(tmp_path, parallelismSpec={"constant": 3}))
    [job] = Runner(store).run_until_idle()
    assert (job.state, job.data_processed) == ("success", 9)
    seen = workers_seen(store)
    assert len({pid for pid, _ in seen}) == 3
    assert {w for _, w in seen} == {"0/3", "1/3", "2/3"}
    assert len(out_files(store, "Par")) == 9


def test_the_runner_override_beats_the_spec_and_one_worker_is_one_process(store, tmp_path):
    store.create_repo("d")
    put(store, "d", {f"/c/{i}": b"x" for i in range(4)})
    store.create_pipeline(batched(tmp_path, parallelismSpec={"constant": 3}))
    [job] = Runner(store, parallelism=1).run_until_idle()
    assert job.state == "success" and workers_seen(store) == {
        (next(iter(workers_seen(store)))[0], "-")
    }


def test_default_is_the_cores_and_a_failed_datum_in_one_worker_fails_only_itself(store, tmp_path):
    store.create_repo("d")
    put(store, "d", {f"/c/{i}": b"x" for i in range(6)})
    runner = Runner(store)
    assert runner.workers({}) == (os.cpu_count() or 1)
    assert runner.workers({"parallelismSpec": {"constant": 2}}) == 2
    bad = batched(tmp_path, parallelismSpec={"constant": 2})
    bad["transform"]["env"] = {"FAIL_WORKER": "1/2"}
    store.create_pipeline(bad)
    [job] = runner.run_until_idle()
    assert job.state == "failure" and job.data_failed == 3


@pytest.mark.parametrize("n", [0, -2])
def test_runner_cli_refuses_a_parallelism_below_one(n, capsys, tmp_path):
    from pipelines.runner import main

    with pytest.raises(SystemExit):
        main(["--root", str(tmp_path), "--parallelism", str(n)])
    assert "--parallelism must be at least 1" in capsys.readouterr().err
