"""After a review: the pipelines re-audit the fix commit. Accepted files are not re-flagged
(and the document says so), class-level findings are never hidden, the commit-relative checks
compare with the last audit that did not fail (never the failed commit the fix repairs), and
the recovery alert names the review."""

from __future__ import annotations

import json

import numpy as np
import pytest

from auditor import audit_commit
from auditor.baseline import LAST_GOOD, REVIEWED
from auditor.review import apply_review, list_review, parse_decisions
from tests.auditor.review.history import audit_doc, finding, picture, run, story_copy


@pytest.fixture
def story(tmp_path_factory, tmp_path, monkeypatch):
    monkeypatch.setenv("TULIP_NO_AUTORUN", "1")
    s = story_copy(tmp_path_factory, tmp_path)
    store = s.open()
    yield s, store
    store.close()


@pytest.fixture(scope="module")
def fixed(tmp_path_factory):
    """The story after the fix round, re-audited by the pipelines (read only)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TULIP_NO_AUTORUN", "1")
        s = story_copy(tmp_path_factory, tmp_path_factory.mktemp("fixed"))
        store = s.open()
        result, doc = fix_round(s, store)
        yield s, store, result, doc
        store.close()


def review(store, audit: str, *items: dict, by: str = "alice"):
    return apply_review(store, audit, parse_decisions(json.dumps(list(items)), source="d"), by=by)


def fix_round(s, store):
    """The seed story's fix through a review: rename orchids to tulips, accept the label
    issues reviewed in round 1. Returns (the result, the fix commit's audit)."""
    doc = audit_doc(store, s.orchids)
    issues = [f for f in doc["findings"] if f["check"] == "label_issue"]
    result = review(
        store,
        f"Audit@{s.orchids}",
        {"finding": finding(doc, "lookalike_class")["id"], "action": "rename", "to": "tulips"},
        *({"finding": f["id"], "action": "accept"} for f in issues),
    )
    run(store)
    return result, audit_doc(store, result.commit["id"])


def test_the_fix_passes_not_re_flagging_what_was_accepted(fixed):
    _s, store, result, doc = fixed
    assert doc["verdict"] == "pass", doc["findings"]
    assert doc["findings"] == []
    assert doc["review"]["not_reflagged"] == 2
    assert doc["review"]["message"] == "2 accepted by review, not re-flagged"
    assert {w["check"] for w in doc["review"]["withheld"]} == {"label_issue"}
    assert doc["review"]["withheld"][0]["accepted"] == [{"review": result.review, "by": "alice"}]
    # the gate opened: Convert published a model from the fix
    convert = store.inspect_commit("Convert", result.commit["id"])
    assert convert.error is None
    assert (
        store.inspect_commit("flower_photos", result.commit["id"]).metadata["tulip.verdict"]
        == "pass"
    )


def test_the_baseline_is_the_last_audit_that_did_not_fail(fixed):
    s, _store, _result, doc = fixed
    assert doc["baseline"]["commit"] == s.round1 and doc["baseline"]["reason"] == LAST_GOOD
    assert [x["commit"] for x in doc["baseline"]["skipped"]] == [s.orchids]
    assert doc["previous"]["commit"] == s.round1  # drift and the rest compared with round 1


def test_the_fix_is_not_told_to_undo_itself_with_or_without_a_reference(story):
    """The bug found on the demo's store: with no reference, the previous commit's classes
    are the gallery, and the failed orchids commit made the fix look wrong."""
    s, store = story
    result, _ = fix_round(s, store)
    doc = audit_commit(store, f"flower_photos@{result.commit['id']}").document
    assert doc["reference"] is None
    assert doc["baseline"]["commit"] == s.round1
    assert not [f for f in doc["findings"] if "orchids" in f["message"]], doc["findings"]
    assert not [f for f in doc["findings"] if f["severity"] == "fail"]
    # tulips are new to round 1's classes: a new label to look at, not a lookalike to undo
    assert [(f["check"], f["classes"]) for f in doc["findings"]] == [("new_label", ["tulips"])]
    doc = audit_commit(
        store, f"flower_photos@{result.commit['id']}", reference=f"label_reference@{s.reference}"
    ).document
    assert doc["verdict"] == "pass" and doc["baseline"]["commit"] == s.round1


def test_class_level_findings_are_never_hidden_by_an_accept(story):
    s, store = story
    doc = audit_doc(store, s.orchids)
    lookalike = finding(doc, "lookalike_class")
    review(store, f"Audit@{s.orchids}", {"finding": lookalike["id"], "action": "accept"})
    again = audit_commit(
        store, f"flower_photos@{s.orchids}", reference=f"label_reference@{s.reference}"
    ).document
    assert finding(again, "lookalike_class")["id"] == lookalike["id"]  # same content, same id
    assert again["verdict"] == "fail"
    # and an accepted failure makes the commit a baseline the next audit may compare with
    with store.start_commit("flower_photos", description="one more daisy") as w:
        w.put_bytes("/daisy/extra.jpg", picture(0, np.random.default_rng(7)))
    run(store)
    later = audit_doc(store, w.id)
    assert later["baseline"]["commit"] == s.orchids and later["baseline"]["reason"] == REVIEWED


def test_a_class_that_gains_files_is_a_new_finding_that_needs_a_new_decision(story):
    s, store = story
    doc = audit_doc(store, s.orchids)
    lookalike = finding(doc, "lookalike_class")
    review(store, f"Audit@{s.orchids}", {"finding": lookalike["id"], "action": "defer"})
    with store.start_commit("flower_photos", description="more orchids") as w:
        rng = np.random.default_rng(8)
        for i in range(3):
            w.put_bytes(f"/orchids/late_{i}.jpg", picture(4, rng))
    run(store)
    later = list_review(store, f"Audit@{w.id}").as_dict()
    new = next(f for f in later["findings"] if f["check"] == "lookalike_class")
    assert new["id"] != lookalike["id"] and len(new["files"]) == 27
    assert new["decision"] is None


def test_the_recovery_alert_names_the_review(fixed):
    s, store, result, _doc = fixed
    events = [e for e in store.outbox.newest(limit=20) if e.type == "audit.recovered"]
    assert [e.subject for e in events] == [f"flower_photos@{result.commit['id']}"]
    named = events[0].data["review"]
    assert named["id"] == result.review and named["by"] == "alice"
    assert named["audit"] == f"Audit@{s.orchids}"
    assert named["fix"]["commit"] == result.commit["id"]
    from reports.alerts.messages import slack_message

    text = json.dumps(slack_message(events[0]))
    assert result.review[:12] in text and f"Audit@{s.orchids}" in text


def test_lineage_has_the_review_between_the_audit_and_the_fix(fixed):
    from auditor.lineage import build_graph, lineage_around

    s, store, result, _doc = fixed
    G = build_graph(store, include_files=False)
    node = f"review:{result.review}"
    assert G.nodes[node]["type"] == "review" and G.nodes[node]["by"] == "alice"
    assert G.has_edge(f"audit:Audit@{s.orchids}", node, key="reviewed")
    assert G.has_edge(node, f"commit:flower_photos@{result.commit['id']}", key="fixed")
    view = lineage_around(
        store, f"Convert@{result.commit['id']}", direction="upstream", files=False
    )
    assert node in view.graph and f"audit:Audit@{s.orchids}" in view.graph
    assert "tulip_reviews" not in {a.get("repo") for _n, a in G.nodes(data=True)}


def test_blame_on_the_fixed_model_shows_the_original_commit_and_the_fix(fixed):
    from auditor.blame import blame

    s, store, result, _doc = fixed
    report = blame(store, f"Convert@{result.commit['id']}")
    [fix] = report.fixes
    assert fix.review == result.review and fix.by == "alice" and fix.audit == f"Audit@{s.orchids}"
    assert fix.commit["id"] == result.commit["id"]
    assert [(o["id"], o["description"]) for o in fix.original] == [(s.orchids, "add orchids")]
    assert report.verdict == "pass"
    summary = report.summary()
    assert f"fixed by review {result.review[:12]}" in summary
    assert f"repairing flower_photos@{s.orchids}" in summary
    text = report.render()
    assert f"Fixed in flower_photos@{result.commit['id']}" in text
    assert f"repairs flower_photos@{s.orchids}  'add orchids'" in text
    assert report.as_dict()["fixes"][0]["original"][0]["id"] == s.orchids
