"""``apply_review`` on a real store after the seed story's failing round: one atomic fix commit
with provenance in its metadata, one ledger commit, and every bad input refused with nothing
changed."""

from __future__ import annotations

import json

import pytest

from auditor.review import apply_review, list_review, list_reviews, parse_decisions
from auditor.review.decisions import (
    ConflictingDecisions,
    InvalidDecisions,
    UnknownClass,
    UnknownFinding,
)
from pipelines.errors import BranchMoved
from pipelines.layout import (
    REVIEW_AUDIT_KEY,
    REVIEW_BY_KEY,
    REVIEW_DECISIONS_KEY,
    REVIEW_FINDINGS_KEY,
    REVIEW_KEY,
    REVIEW_RECORD_KEY,
    REVIEWS_REPO,
)
from tests.auditor.review.history import audit_doc, finding, story_copy


@pytest.fixture
def story(tmp_path_factory, tmp_path, monkeypatch):
    monkeypatch.setenv("TULIP_NO_AUTORUN", "1")
    s = story_copy(tmp_path_factory, tmp_path)
    store = s.open()
    yield s, store
    store.close()


def decisions(*items: dict):
    return parse_decisions(json.dumps(list(items)), source="decisions.json")


def rename_orchids(doc: dict) -> dict:
    return {"finding": finding(doc, "lookalike_class")["id"], "action": "rename", "to": "tulips"}


def state(store) -> tuple:
    """What an apply must not touch when it refuses."""
    repos = sorted(r.name for r in store.list_repos())
    return (
        store.inspect_branch("flower_photos", "master").head,
        repos,
        set(store.objects.digests()),
    )


def test_a_dry_run_shows_the_moves_and_counts_and_changes_nothing(story):
    s, store = story
    doc = audit_doc(store, s.orchids)
    before = state(store)
    result = apply_review(
        store, f"Audit@{s.orchids}", decisions(rename_orchids(doc)), by="alice", dry_run=True
    )
    d = result.as_dict()
    assert d["dry_run"] is True and d["commit"] is None and d["moved"] == 24
    assert d["classes"]["before"]["orchids"] == 24 and "orchids" not in d["classes"]["after"]
    assert d["classes"]["after"]["tulips"] == 24
    assert {m["from"].replace("/orchids/", "/tulips/") for m in d["moves"]} == {
        m["to"] for m in d["moves"]
    }
    assert state(store) == before


def test_apply_makes_one_user_commit_with_provenance_and_one_ledger_commit(story):
    s, store = story
    doc = audit_doc(store, s.orchids)
    odd = finding(doc, "label_issue", "roses")
    other = finding(doc, "label_issue", "sunflowers")
    blobs = set(store.objects.digests())
    result = apply_review(
        store,
        f"Audit@{s.orchids}",
        decisions(
            rename_orchids(doc),
            {"finding": odd["id"], "action": "relabel"},  # to the suggested class
            {"finding": other["id"], "file": other["files"][0], "action": "accept"},
        ),
        by="alice",
    )
    d = result.as_dict()
    assert (d["moved"], d["excluded"], d["accepted"]) == (25, 0, 1)
    commit = store.inspect_commit("flower_photos", d["commit"]["id"])
    assert d["commit"] == {"repo": "flower_photos", "branch": "master", "id": commit.id}
    assert commit.origin == "USER" and commit.parent == s.orchids
    assert store.inspect_branch("flower_photos", "master").head == commit.id
    assert "rename /orchids -> /tulips (24 files)" in commit.description
    assert "relabel 1 file" in commit.description and "by alice" in commit.description
    paths = {f.path for f in store.walk_files("flower_photos", commit.id)}
    assert not any(p.startswith("/orchids/") for p in paths)
    assert len([p for p in paths if p.startswith("/tulips/")]) == 24
    assert "/daisy/odd_daisy.jpg" in paths and "/roses/odd_daisy.jpg" not in paths
    assert set(store.objects.digests()) - blobs <= {  # no image content was written again
        store.inspect_file(REVIEWS_REPO, d["ledger"]["commit"], f.path).hash
        for f in store.walk_files(REVIEWS_REPO, d["ledger"]["commit"])
    }
    meta = commit.metadata
    assert meta[REVIEW_KEY] == d["review"] and meta[REVIEW_BY_KEY] == "alice"
    assert meta[REVIEW_AUDIT_KEY] == f"Audit@{s.orchids}"
    assert set(json.loads(meta[REVIEW_FINDINGS_KEY])) == {
        finding(doc, "lookalike_class")["id"],
        odd["id"],
        other["id"],
    }
    assert {x["action"] for x in json.loads(meta[REVIEW_DECISIONS_KEY])} == {
        "rename",
        "relabel",
        "accept",
    }
    assert meta[REVIEW_RECORD_KEY].startswith(f"{REVIEWS_REPO}@{d['ledger']['commit']}:/reviews/")
    [record] = list_reviews(store)
    assert record.id == d["review"] and record.fix["commit"] == commit.id
    assert record.document["by"] == "alice" and record.document["audit"]["commit"] == s.orchids


def test_the_queue_shows_the_decisions_made(story):
    s, store = story
    doc = audit_doc(store, s.orchids)
    before = list_review(store, f"Audit@{s.orchids}").as_dict()
    assert [f["decision"] for f in before["findings"]] == [None] * len(doc["findings"])
    assert {f["id"] for f in before["findings"]} == {f["id"] for f in doc["findings"]}
    apply_review(store, f"Audit@{s.orchids}", decisions(rename_orchids(doc)), by="bob")
    # the data commit's name finds the same audit
    after = list_review(store, f"flower_photos@{s.orchids}").as_dict()
    decided = {f["id"]: f["decision"] for f in after["findings"]}
    d = decided[finding(doc, "lookalike_class")["id"]]
    assert (d["action"], d["to"], d["by"]) == ("rename", "tulips", "bob")
    assert [r["by"] for r in after["reviews"]] == ["bob"]


def test_accept_only_records_in_the_ledger_and_makes_no_data_commit(story):
    s, store = story
    doc = audit_doc(store, s.orchids)
    head = store.inspect_branch("flower_photos", "master").head
    issues = [f for f in doc["findings"] if f["check"] == "label_issue"]
    result = apply_review(
        store,
        f"Audit@{s.orchids}",
        decisions(*({"finding": f["id"], "action": "accept"} for f in issues)),
        by="carol",
    ).as_dict()
    assert result["commit"] is None and result["accepted"] == 2
    assert result["ledger"]["repo"] == REVIEWS_REPO
    assert store.inspect_branch("flower_photos", "master").head == head


@pytest.mark.parametrize(
    ("raw", "error", "match"),
    [
        ("not json", InvalidDecisions, "not valid JSON"),
        ('{"finding": "x"}', InvalidDecisions, "must be a list of decisions"),
        (
            '[{"finding": "x", "action": "delete"}]',
            InvalidDecisions,
            "action 'delete' is not one of",
        ),
        ('[{"finding": "x", "action": "accept", "wat": 1}]', InvalidDecisions, "unknown field"),
        ('[{"action": "accept"}]', InvalidDecisions, "names no finding"),
    ],
)
def test_a_bad_decision_file_is_refused_naming_the_problem(raw, error, match):
    with pytest.raises(error, match=match):
        parse_decisions(raw, source="decisions.json")


def refused(store, s, items, error, match, **kwargs):
    before = state(store)
    with pytest.raises(error, match=match):
        apply_review(store, f"Audit@{s.orchids}", decisions(*items), by="x", **kwargs)
    assert state(store) == before  # nothing committed, no ledger, no new blob


def test_an_unknown_finding_id_is_refused(story):
    s, store = story
    item = {"finding": "0123456789abcdef", "action": "accept"}
    refused(store, s, [item], UnknownFinding, "no finding '0123456789abcdef' in Audit@")


def test_a_relabel_to_a_class_the_data_lacks_needs_new_class(story):
    s, store = story
    odd = finding(audit_doc(store, s.orchids), "label_issue", "roses")
    item = {"finding": odd["id"], "action": "relabel", "to": "lilies"}
    refused(store, s, [item], UnknownClass, "'lilies', a class the data does not have.*--new-class")
    result = apply_review(store, f"Audit@{s.orchids}", decisions(item), by="x", new_class=True)
    assert "/lilies/odd_daisy.jpg" in {
        f.path for f in store.walk_files("flower_photos", result.commit["id"])
    }


def test_two_decisions_that_conflict_for_one_file_are_refused(story):
    s, store = story
    odd = finding(audit_doc(store, s.orchids), "label_issue", "roses")
    refused(
        store,
        s,
        [
            {"finding": odd["id"], "action": "relabel", "to": "daisy"},
            {"finding": odd["id"], "action": "exclude"},
        ],
        ConflictingDecisions,
        r"decision 2 would exclude /roses/odd_daisy.jpg, but decision 1 would relabel to daisy",
    )


def test_a_move_onto_an_existing_file_is_refused(story):
    s, store = story
    doc = audit_doc(store, s.orchids)
    with store.start_commit("flower_photos") as w:  # a tulip already where an orchid would go
        w.put_bytes("/tulips/orchid_00.jpg", b"another picture")
    refused(store, s, [rename_orchids(doc)], BranchMoved, "moved since")
    refused(store, s, [rename_orchids(doc)], ConflictingDecisions, "would overwrite", rebase=True)


def test_an_apply_on_a_branch_that_moved_is_refused_unless_rebase_shows_it_still_applies(story):
    s, store = story
    doc = audit_doc(store, s.orchids)
    with store.start_commit("flower_photos", description="later") as w:
        w.put_bytes("/daisy/later.jpg", b"later")
    refused(
        store, s, [rename_orchids(doc)], BranchMoved, f"audited {s.orchids}: its head is now {w.id}"
    )
    result = apply_review(
        store, f"Audit@{s.orchids}", decisions(rename_orchids(doc)), by="x", rebase=True
    )
    fix = store.inspect_commit("flower_photos", result.commit["id"])
    assert fix.parent == w.id
    assert "/daisy/later.jpg" in {f.path for f in store.walk_files("flower_photos", fix.id)}


def test_rebase_refuses_when_a_decided_file_changed(story):
    s, store = story
    doc = audit_doc(store, s.orchids)
    with store.start_commit("flower_photos", description="retake") as w:
        w.put_bytes("/orchids/orchid_03.jpg", b"retaken")
    refused(store, s, [rename_orchids(doc)], ConflictingDecisions, "orchid_03.jpg", rebase=True)
