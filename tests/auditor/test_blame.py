"""Blame, on a real store: the seed history, and an Audit stage whose findings the test writes."""

from __future__ import annotations

import json

import pytest

from auditor.blame import blame, summarize_paths
from pipelines.runner import Runner

from .lineage_history import shared_history


@pytest.fixture(scope="session")
def history(tmp_path_factory):
    return shared_history(tmp_path_factory)


@pytest.fixture(scope="module")
def store(history):
    s = history.open()
    yield s
    s.close()


ORCHIDS = ["/orchids/1.jpg", "/orchids/2.jpg", "/orchids/3.jpg"]


def test_blame_a_blocked_convert_names_the_audit_and_the_orchids_commit(history, store):
    report = blame(store, f"Convert@{history.orchids}")
    assert report.target["kind"] == "model"
    assert report.blocked.startswith("gate blocked: audit ")
    assert [(a.repo, a.commit, a.verdict) for a in report.audits] == [
        ("Audit", history.orchids, "fail")
    ]
    assert [b["id"] for b in report.built_from if b["repo"] == "flower_photos"] == [history.orchids]
    # introduced_by was empty in audit.json: the file history found the commit.
    [commit] = report.commits
    assert (commit.repo, commit.id, commit.description) == (
        "flower_photos",
        history.orchids,
        "add orchids",
    )
    assert commit.files == ORCHIDS
    [finding] = commit.findings
    assert (finding.check, finding.severity, finding.classes) == (
        "class_overlap",
        "fail",
        ["orchids", "tulips"],
    )
    line = report.summary(now=commit.started + 185)
    assert line.startswith(
        f"Convert@{history.orchids} was built from flower_photos@{history.orchids}"
    )
    assert "the gate blocked it" in line
    assert "class_overlap orchids↔tulips" in line
    assert (
        f"introduced by flower_photos@{history.orchids} (3 min ago, 'add orchids'): "
        "/orchids/ (3 files)" in line
    )
    assert any("carried over from its parent" in n for n in report.notes)
    doc = report.as_dict()
    json.dumps(doc)
    assert doc["verdict"] == "fail" and doc["commits"][0]["files"] == ORCHIDS


@pytest.mark.parametrize("repo", ["Train", "Audit", "flower_photos"])
def test_blame_from_a_model_an_audit_or_the_data_commit(history, store, repo):
    report = blame(store, f"{repo}@{history.orchids}")
    assert (
        report.target["kind"] == {"Train": "model", "Audit": "audit", "flower_photos": "data"}[repo]
    )
    assert report.blocked is None
    assert [c.id for c in report.commits] == [history.orchids]
    assert report.commits[0].files == ORCHIDS
    assert report.target["model_file"] == ("/model.keras" if repo == "Train" else None)


def test_blame_a_passing_model_finds_nothing_to_blame(history, store):
    report = blame(store, "Convert@master")
    assert report.target["id"] == history.ref1
    assert report.verdict == "pass" and report.commits == []
    # flower_photos came in under its older ID: the audit of ref1 looked at cleanup.
    assert report.audits[0].data == {"repo": "flower_photos", "commit": history.cleanup}
    assert "passed with no findings to blame" in report.summary()


def test_blame_a_model_whose_audit_is_in_another_commit_set(history, store):
    # Train@cleanup has no audit in its provenance; the audit of cleanup is in its commit set.
    report = blame(store, f"Train@{history.cleanup}")
    assert [a.commit for a in report.audits] == [history.cleanup]


COPY_AUDIT = (
    "import shutil, sys; shutil.copy(sys.argv[1] + '/audit_doc.json', sys.argv[2] + '/audit.json')"
)


@pytest.fixture
def scripted(store_factory):
    """A store whose Audit stage publishes the audit.json the test committed with the data."""
    s = store_factory()
    s.create_repo("photos")
    s.create_pipeline(
        {
            "pipeline": {"name": "Audit"},
            "transform": {
                "image": "t",
                "cmd": ["python3", "-c", COPY_AUDIT, "/pfs/photos", "/pfs/out"],
            },
            "input": {"pfs": {"repo": "photos", "glob": "/"}},
        }
    )
    Runner(s).run_until_idle()
    return s


@pytest.fixture
def store_factory(tmp_path, monkeypatch):
    from pipelines.embedded.store import EmbeddedStore

    monkeypatch.setenv("TULIP_NO_AUTORUN", "1")
    opened = []

    def make():
        s = EmbeddedStore(tmp_path / f"store{len(opened)}")
        opened.append(s)
        return s

    yield make
    for s in opened:
        s.close()


def _commit(s, description, puts=None, audit=None, deletes=()):
    with s.start_commit("photos", description=description) as w:
        for p in deletes:
            w.delete(p)
        for path, data in (puts or {}).items():
            w.put_bytes(path, data)
        if audit is not None:
            w.put_bytes("/audit_doc.json", json.dumps(audit).encode())
    Runner(s).run_until_idle()
    return w.id


def _audit(commit_hint, findings, verdict="warn"):
    return {
        "schema": "tulip.audit/v1",
        "verdict": verdict,
        "data": {"repo": "photos", "branch": "master", "commit": commit_hint},
        "reference": None,
        "summary": {},
        "findings": findings,
    }


def test_introduced_by_is_trusted_when_single_and_computed_per_file_otherwise(scripted):
    s = scripted
    c1 = _commit(s, "cats", {"/cat/1.jpg": b"c1", "/cat/2.jpg": b"c2"})
    c2 = _commit(s, "dogs", {"/dog/1.jpg": b"d1", "/dog/2.jpg": b"d2"})
    # The audit docs below ride in later commits that change nothing else, so the data they
    # describe is c2's.
    findings = [
        # one introduced_by entry: trusted as is, no history walk
        {
            "check": "label_issue",
            "severity": "warn",
            "classes": ["cat", "dog"],
            "files": ["/cat/2.jpg"],
            "introduced_by": [{"repo": "photos", "commit": c1}],
            "message": "looks like a dog",
        },
        # two entries: each file goes to the commit that really added it
        {
            "check": "cross_class_duplicate",
            "severity": "fail",
            "classes": ["cat", "dog"],
            "files": ["/cat/1.jpg", "/dog/1.jpg"],
            "introduced_by": [{"repo": "photos", "commit": c1}, {"repo": "photos", "commit": c2}],
            "message": "same picture twice",
        },
        # no files, but a commit: blamed with no files
        {
            "check": "class_imbalance",
            "severity": "warn",
            "classes": ["dog"],
            "files": [],
            "introduced_by": [{"repo": "photos", "commit": c2}],
            "message": "",
        },
        # nothing to go on
        {"check": "drift", "severity": "warn", "classes": ["cat"], "files": [], "message": ""},
        # a file the audited commit does not hold
        {"check": "duplicate", "severity": "warn", "classes": ["cat"], "files": ["/cat/9.jpg"]},
    ]
    c3 = _commit(s, "audit doc", audit=_audit(None, findings, verdict="fail"))
    report = blame(s, f"photos@{c3}")
    assert report.audits and report.audits[0].verdict == "fail"
    # data.commit was None: per-file attribution cannot run, so those files are unattributed.
    assert {u["check"] for u in report.unattributed} >= {"drift", "cross_class_duplicate"}

    c4 = _commit(s, "audit doc 2", audit=_audit(c2, findings, verdict="fail"))
    report = blame(s, f"Audit@{c4}")
    by_commit = {c.id: c for c in report.commits}
    assert set(by_commit) == {c1, c2}
    assert by_commit[c1].files == ["/cat/1.jpg", "/cat/2.jpg"]
    assert by_commit[c2].files == ["/dog/1.jpg"]
    assert {f.check for f in by_commit[c2].findings} == {"cross_class_duplicate", "class_imbalance"}
    dup = next(f for f in by_commit[c1].findings if f.check == "cross_class_duplicate")
    assert (dup.files, dup.total_files) == (["/cat/1.jpg"], 2)
    assert {u["check"] for u in report.unattributed} == {"drift", "duplicate"}
    # The fail finding's commit comes first; the text shows label_issue as given→suggested.
    text = report.render(now=0)
    assert "label_issue cat→dog" in text and "cross_class_duplicate cat↔dog" in text
    assert report.summary().startswith(f"Audit@{c4} audited photos@{c4}; it failed:")


def test_a_failed_audit_job_is_reported_not_read(scripted):
    s = scripted
    good = _commit(s, "ok", {"/a/1.jpg": b"1"}, audit=_audit(None, []))
    bad = _commit(s, "no doc", deletes=["/audit_doc.json"])
    report = blame(s, f"photos@{bad}")
    assert report.audits and report.audits[0].error
    assert "did not finish" in report.summary()
    assert blame(s, f"photos@{good}").verdict == "warn"


def test_data_never_audited(store_factory):
    s = store_factory()
    s.create_repo("photos")
    with s.start_commit("photos") as w:
        w.put_bytes("/a/1.jpg", b"1")
    report = blame(s, "photos@master")
    assert report.audits == [] and "no audit of it was found" in report.summary()
    assert any("tulip audit photos@" in n for n in report.notes)


def test_summarize_paths():
    assert summarize_paths(ORCHIDS) == "/orchids/ (3 files)"
    assert summarize_paths(["/a/1.jpg", "/b/2.jpg", "/b/3.jpg"]) == "/a/1.jpg, /b/ (2 files)"
    assert summarize_paths([]) == "no files"
    assert summarize_paths([f"/{i}/x.jpg" for i in range(6)]).endswith("and 2 more folders")
