"""A job's datums are stored as changes against its carry base: k rows for k changed datums,
read back as the whole set (skipped datums included), and stored whole again when the changes
along a chain of bases outgrow the set."""

import random
import sys
import textwrap

import pytest

from tests.pipelines.test_runner import pfs, put

STAGE = textwrap.dedent("""
    from pipelines.worker import run_batched
    def process(batch):
        for d in batch:
            for f in d.files():
                if f.read_bytes() == b"bad":
                    d.fail("bad input")
                    continue
                (d.out / (d.relpath(f).strip("/").replace("/", "_") + ".n")).write_bytes(
                    f.read_bytes()
                )
    run_batched(process, batch_size=16)
""")


@pytest.fixture
def each(store, tmp_path):
    script = tmp_path / "stage.py"
    script.write_text(STAGE)
    store.create_repo("d")
    return {
        "pipeline": {"name": "Each"},
        "transform": {"cmd": [sys.executable, str(script)], "datumBatching": True},
        "input": pfs("d", "/*"),
    }


def stored_rows(store, job_id: str) -> int:
    return store.db.conn.execute(
        "SELECT COUNT(*) FROM datums WHERE pipeline = 'Each' AND job_id = ?", (job_id,)
    ).fetchone()[0]


def listed(store, job_id: str) -> dict[str, str]:
    """file -> state, as `tulip list datum` shows a job's datums."""
    out = {}
    for d in store.list_datums("Each", job_id):
        [path] = d.files  # "input:path"
        path = path.removeprefix("d:")
        assert path not in out, f"{path} listed twice"
        out[path] = d.state
    return out


def test_a_one_percent_job_stores_its_changes_and_lists_every_datum(store, run_jobs, each):
    put(store, "d", {f"/{i:03d}": b"v%d" % i for i in range(200)})
    store.create_pipeline(each)
    [first] = run_jobs(store)
    assert stored_rows(store, first.id) == 200  # the first job has no base: its whole set

    put(store, "d", {"/new1": b"n1", "/005": b"changed"}, deletes=["/007"])
    [second] = run_jobs(store)
    assert (second.data_processed, second.data_skipped) == (2, 198)
    # /new1 and the new /005 ran; the old /005 and /007 are gone: 4 rows, not 200
    assert stored_rows(store, second.id) == 4
    states = listed(store, second.id)
    assert len(states) == 200 and "/007" not in states
    assert states["/new1"] == states["/005"] == "success"
    assert {s for p, s in states.items() if p not in ("/new1", "/005")} == {"skipped"}
    # the first job still reads as it ran
    assert set(listed(store, first.id).values()) == {"success"}
    assert len(listed(store, first.id)) == 200


def test_random_history_reads_back_as_the_runner_saw_it(store, run_jobs, each):
    """30 jobs of random puts, changes, deletes and failing datums; after each, the stored
    set must list exactly the head's files, with what the job did to each."""
    rng = random.Random(12)
    files = {f"/{i:03d}": b"v%d" % i for i in range(60)}
    put(store, "d", files)
    store.create_pipeline(each)
    run_jobs(store)
    ran_before: set[tuple[str, bytes]] = {(p, v) for p, v in files.items()}
    whole_again = 0
    for step in range(30):
        adds = {f"/n{step}_{j}": b"a%d_%d" % (step, j) for j in range(rng.randint(0, 4))}
        changes = {p: b"c%d" % step for p in rng.sample(sorted(files), rng.randint(0, 3))}
        if rng.random() < 0.2:
            changes[rng.choice(sorted(files))] = b"bad"
        deletes = rng.sample(sorted(set(files) - set(changes)), rng.randint(0, 2))
        put(store, "d", {**adds, **changes}, deletes=deletes)
        for p in deletes:
            del files[p]
        files.update(adds)
        files.update(changes)
        [job] = run_jobs(store)
        want = {}
        for p, v in files.items():
            if v == b"bad":
                want[p] = "failed"
            else:
                want[p] = "skipped" if (p, v) in ran_before else "success"
        assert listed(store, job.id) == want, f"step {step}"
        assert job.state == ("failure" if "failed" in want.values() else "success")
        if job.state == "success":
            ran_before |= {(p, v) for p, v in files.items()}
        else:  # the datums that succeeded are kept for the next job to skip
            ran_before |= {(p, v) for p, v in files.items() if v != b"bad"}
            for p, v in list(files.items()):  # fix the bad ones in the next put
                if v == b"bad":
                    files[p] = b"fixed%d" % step
                    put(store, "d", {p: files[p]})
            [fixed] = run_jobs(store)
            assert fixed.state == "success"
            ran_before |= {(p, v) for p, v in files.items()}
            job = fixed
        base = store.db.conn.execute(
            "SELECT datums_base FROM jobs WHERE pipeline = 'Each' AND id = ?", (job.id,)
        ).fetchone()[0]
        whole_again += base is None
    # 30 jobs of a few changes each on ~60 datums: the chain outgrows the set a few times
    assert 1 <= whole_again < 15
    rows = store.db.conn.execute("SELECT COUNT(*) FROM datums WHERE pipeline = 'Each'").fetchone()
    assert rows[0] < 60 * 15  # full copies per job would be ~60 * 40
