"""`tulip review` as a user runs it: the real console script in a subprocess, on a store after
the seed story's failing round. The JSON shapes are the interface contract; every bad input
exits 2 with a message naming it and changes nothing; an apply killed with SIGKILL half-way
leaves no half-written review."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from tests.auditor.review.history import audit_doc, finding, story_copy


@pytest.fixture
def story(tmp_path_factory, tmp_path, tulip_cli, monkeypatch):
    monkeypatch.setenv("TULIP_NO_AUTORUN", "1")
    s = story_copy(tmp_path_factory, tmp_path)
    tulip_cli.env = {"TULIP_ROOT": str(s.root), "TULIP_NO_AUTORUN": "1", "USER": "dana"}
    store = s.open()
    doc = audit_doc(store, s.orchids)
    store.close()
    return s, doc


def head(s) -> str:
    store = s.open()
    try:
        return store.inspect_branch("flower_photos", "master").head
    finally:
        store.close()


def write(tmp_path, items, name="decisions.json"):
    p = tmp_path / name
    p.write_text(json.dumps(items) if not isinstance(items, str) else items)
    return str(p)


def test_review_list_json_has_the_contract_fields(story, tulip_cli):
    s, doc = story
    listing = json.loads(tulip_cli("review", "list", f"Audit@{s.orchids}", "-o", "json").stdout)
    assert len(listing["findings"]) == len(doc["findings"])
    for f in listing["findings"]:
        assert {"id", "check", "files", "classes", "decision"} <= set(f)
        assert f["decision"] is None
    text = tulip_cli("review", "list", f"Audit@{s.orchids}").stdout.decode()
    assert finding(doc, "lookalike_class")["id"] in text and "FAIL" in text


def test_review_apply_json_names_the_new_commit(story, tulip_cli, tmp_path):
    s, doc = story
    lookalike = finding(doc, "lookalike_class")
    path = write(tmp_path, [{"finding": lookalike["id"], "action": "rename", "to": "tulips"}])
    dry = json.loads(
        tulip_cli(
            "review", "apply", f"Audit@{s.orchids}", "--decisions", path, "--dry-run", "-o", "json"
        ).stdout
    )
    assert dry["commit"] is None and dry["moved"] == 24 and head(s) == s.orchids
    text = tulip_cli("review", "apply", f"Audit@{s.orchids}", "--decisions", path, "--dry-run")
    assert b"DRY RUN" in text.stdout and b"rename /orchids/ -> /tulips/: 24 files" in text.stdout
    out = json.loads(
        tulip_cli(
            "review",
            "apply",
            f"Audit@{s.orchids}",
            "--decisions",
            path,
            "--by",
            "erin",
            "-o",
            "json",
        ).stdout
    )
    assert set(out["commit"]) == {"repo", "branch", "id"}
    assert out["commit"]["repo"] == "flower_photos" and out["commit"]["branch"] == "master"
    assert (out["moved"], out["excluded"], out["accepted"]) == (24, 0, 0)
    assert head(s) == out["commit"]["id"]
    meta = json.loads(
        tulip_cli("inspect", "commit", f"flower_photos@{out['commit']['id']}", "-o", "json").stdout
    )["metadata"]
    assert meta["tulip.review.by"] == "erin" and meta["tulip.review.audit"] == f"Audit@{s.orchids}"
    assert json.loads(meta["tulip.review.findings"]) == [lookalike["id"]]


def test_by_defaults_to_user(story, tulip_cli, tmp_path):
    s, doc = story
    path = write(tmp_path, [{"finding": finding(doc, "label_issue")["id"], "action": "accept"}])
    out = json.loads(
        tulip_cli("review", "apply", f"Audit@{s.orchids}", "--decisions", path, "-o", "json").stdout
    )
    assert out["by"] == "dana" and out["commit"] is None and out["accepted"] == 1


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ("{not json", "decisions.json is not valid JSON"),
        ([{"finding": "LOOKALIKE", "action": "rename-all", "to": "tulips"}], "action 'rename-all'"),
        ([{"finding": "feedfacefeedface", "action": "accept"}], "no finding 'feedfacefeedface'"),
        (
            [{"finding": "ISSUE", "action": "relabel", "to": "lilies"}],
            "'lilies', a class the data does not have",
        ),
        (
            [
                {"finding": "ISSUE", "action": "relabel", "to": "daisy"},
                {"finding": "ISSUE", "action": "accept"},
            ],
            "decision 2 would accept /roses/odd_daisy.jpg, but decision 1 would relabel",
        ),
    ],
)
def test_bad_decisions_exit_2_naming_the_problem(story, tulip_cli, tmp_path, items, message):
    s, doc = story
    ids = {
        "LOOKALIKE": finding(doc, "lookalike_class")["id"],
        "ISSUE": finding(doc, "label_issue", "roses")["id"],
    }
    if not isinstance(items, str):
        items = [{**i, "finding": ids.get(i["finding"], i["finding"])} for i in items]
    path = write(tmp_path, items)
    proc = tulip_cli("review", "apply", f"Audit@{s.orchids}", "--decisions", path, check=False)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr.decode() and proc.stdout == b""
    assert head(s) == s.orchids


def test_an_apply_on_a_branch_that_moved_exits_2(story, tulip_cli, tmp_path):
    s, doc = story
    (tmp_path / "x.jpg").write_bytes(b"x")
    tulip_cli("put", "file", "flower_photos@master:/daisy/x.jpg", "-f", str(tmp_path / "x.jpg"))
    moved = head(s)
    path = write(
        tmp_path,
        [{"finding": finding(doc, "lookalike_class")["id"], "action": "rename", "to": "tulips"}],
    )
    proc = tulip_cli("review", "apply", f"Audit@{s.orchids}", "--decisions", path, check=False)
    assert proc.returncode == 2
    assert "moved since" in proc.stderr.decode() and "--rebase" in proc.stderr.decode()
    assert head(s) == moved


KILLED = """
import os, sys, time
from pathlib import Path
import auditor.review.apply as apply

stage = sys.argv[1]
record = apply.record_review
ready = Path(os.environ["KILL_READY"])

def pause():
    ready.write_text("here")
    time.sleep(600)

def record_then_pause(*a, **k):
    if stage == "before-ledger":
        pause()
    out = record(*a, **k)
    pause()
    return out

apply.record_review = record_then_pause
from tulip.cli.main import main
sys.argv = ["tulip", *sys.argv[2:]]
main()
"""


@pytest.mark.parametrize("stage", ["before-ledger", "after-ledger"])
def test_an_apply_killed_half_way_writes_nothing_half(story, tulip_cli, tmp_path, stage):
    """SIGKILL while the fix commit is open: before or after the ledger named it. Either way
    the branch is untouched, the ledger counts no review, and the apply can simply be run
    again."""
    s, doc = story
    lookalike = finding(doc, "lookalike_class")
    path = write(tmp_path, [{"finding": lookalike["id"], "action": "rename", "to": "tulips"}])
    script = tmp_path / "killed.py"
    script.write_text(textwrap.dedent(KILLED))
    ready = tmp_path / "ready"
    env = {**os.environ, **tulip_cli.env, "KILL_READY": str(ready)}
    proc = subprocess.Popen(
        [
            sys.executable,
            str(script),
            stage,
            "review",
            "apply",
            f"Audit@{s.orchids}",
            "--decisions",
            path,
            "-q",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while not ready.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert head(s) == s.orchids
    recorded = tulip_cli("list", "commit", "tulip_reviews", "-o", "json", check=False)
    if stage == "after-ledger":  # the record is there, naming a fix commit that never landed
        assert len(json.loads(recorded.stdout)) == 1
    else:
        assert recorded.returncode == 2  # no ledger yet
    listing = json.loads(tulip_cli("review", "list", f"Audit@{s.orchids}", "-o", "json").stdout)
    assert listing["reviews"] == [] and all(f["decision"] is None for f in listing["findings"])
    tulip_cli("fsck")
    out = json.loads(
        tulip_cli("review", "apply", f"Audit@{s.orchids}", "--decisions", path, "-o", "json").stdout
    )
    assert head(s) == out["commit"]["id"]
    listing = json.loads(tulip_cli("review", "list", f"Audit@{s.orchids}", "-o", "json").stdout)
    assert [r["id"] for r in listing["reviews"]] == [out["review"]]
