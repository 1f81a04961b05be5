"""The engine's queue (``pipelines.embedded.jobs``): hooks and their guard, events that land with
the job, and what a finished job records."""

from __future__ import annotations

import logging

from pipelines.embedded.jobs import JobFinished
from pipelines.runner import Runner


def put(store, repo, files):
    with store.start_commit(repo) as w:
        for p, data in files.items():
            w.put_bytes(p, data)
    return store.resolve(f"{repo}@master")


def copy_pipeline(name="Copy", repo="d"):
    return {
        "pipeline": {"name": name},
        "transform": {"cmd": ["bash"], "stdin": [f"cp -r /pfs/{repo}/* /pfs/out/"]},
        "input": {"pfs": {"repo": repo, "glob": "/*"}},
    }


def test_hooks_get_a_typed_event_and_their_events_land_with_the_job(store):
    store.create_repo("d")
    put(store, "d", {"/audit.json": b'{"verdict": "fail"}'})
    store.create_pipeline(copy_pipeline())
    seen: list[JobFinished] = []

    def hook(event: JobFinished) -> None:
        seen.append(event)
        # The store as the transaction sees it: the output commit is already finished.
        commit = event.store.inspect_commit(event.job.pipeline, event.job.id)
        assert commit.finished is not None
        event.emit(
            "audit.read", f"Copy@{event.job.id}", {"doc": event.read("/audit.json").decode()}
        )
        assert event.read("/nope") is None

    [job] = Runner(store, hooks=[hook], sinks=[]).run_until_idle()
    assert job.state == "success"
    [event] = seen
    assert event.job.state == "success" and event.job.data_processed == 1
    assert [r.repo for r in event.inputs] == ["d"]
    assert event.spec["pipeline"]["name"] == "Copy"
    [stored] = store.outbox.newest(type_glob="audit.*")
    assert stored.data == {"doc": '{"verdict": "fail"}'} and event.emitted == [stored.id]


def test_a_failing_hook_is_logged_and_undone_and_the_job_still_commits(store, caplog):
    store.create_repo("d")
    put(store, "d", {"/a": b"1"})
    store.create_pipeline(copy_pipeline())
    sunk = []

    def first(event):
        event.emit("hook.first", "s", {})

    def broken(event):
        event.emit("hook.broken", "s", {})  # emitted, then the hook fails: it must vanish
        raise RuntimeError("hook bug")

    def last(event):
        event.emit("hook.last", "s", {})

    with caplog.at_level(logging.ERROR, logger="tulip.jobs"):
        [job] = Runner(store, hooks=[first, broken, last], sinks=[sunk.append]).run_until_idle()
    assert job.state == "success"
    assert store.get_file("Copy", job.id, "/a") == b"1"
    assert {e.type for e in store.outbox.newest()} == {"hook.first", "hook.last"}
    assert "hook bug" in caplog.text and "broken" in caplog.text
    assert sunk == [store.root]  # events were emitted, so the sinks ran once


def test_a_failed_job_emits_job_failed_in_its_own_transaction(store):
    store.create_repo("d")
    put(store, "d", {"/a": b"1"})
    spec = copy_pipeline()
    spec["transform"]["stdin"] = ["echo 'no model today' >&2; exit 3"]
    spec["datumTries"] = 1
    store.create_pipeline(spec)
    [job] = Runner(store, hooks=[], sinks=[]).run_until_idle()
    assert job.state == "failure" and job.reason == "no model today"
    [event] = store.outbox.newest()
    assert event.type == "job.failed" and event.subject == f"Copy@{job.id}"
    assert event.data["reason"] == "no model today"


def test_a_sink_that_fails_does_not_stop_the_runner(store):
    store.create_repo("d")
    put(store, "d", {"/a": b"1"})
    spec = copy_pipeline()
    spec["transform"]["stdin"] = ["exit 1"]
    spec["datumTries"] = 1
    store.create_pipeline(spec)

    def sink(_root):
        raise OSError("cannot spawn")

    [job] = Runner(store, hooks=[], sinks=[sink]).run_until_idle()
    assert job.state == "failure"
