import pytest

from auditor.findings import SCHEMA, Finding, audit_document, verdict, with_introduced_by


def _f(check="label_issue", severity="warn", files=("/a/1.jpg",), classes=("a", "b"), score=0.5):
    return Finding(check, severity, list(classes), score, list(files), f"{check} message")


def test_verdict_is_the_worst_severity_and_info_is_free():
    assert verdict([]) == "pass"
    assert verdict([_f(severity="info")]) == "pass"
    assert verdict([_f(severity="info"), _f(severity="warn")]) == "warn"
    assert verdict([_f(severity="warn"), _f(check="class_overlap", severity="fail")]) == "fail"


def test_a_finding_refuses_an_unknown_severity():
    with pytest.raises(ValueError, match="severity must be one of"):
        _f(severity="error")


def test_introduced_by_is_the_union_of_the_commits_of_the_files():
    history = {"/a/1.jpg": "c1", "/a/2.jpg": "c2", "/a/3.jpg": "c1"}
    (f,) = with_introduced_by(
        [_f(files=["/a/1.jpg", "/a/2.jpg", "/a/3.jpg"])],
        lambda p: [{"repo": "flower_photos", "commit": history[p]}],
    )
    assert f.introduced_by == [
        {"repo": "flower_photos", "commit": "c1"},
        {"repo": "flower_photos", "commit": "c2"},
    ]


def test_document_follows_the_contract_and_orders_findings_worst_first():
    findings = [
        _f(),
        _f(check="class_overlap", severity="fail", files=["/orchids/1.jpg"], score=0.9),
    ]
    doc = audit_document(
        findings,
        data_ref={"repo": "flower_photos", "branch": "master", "commit": "c" * 32},
        reference_ref=None,
        labels=["a", "a", "b"],
        unreadable=1,
        extra={"timings": {"total": 1.0}},
    )
    assert doc["schema"] == SCHEMA == "tulip.audit/v1"
    assert doc["verdict"] == "fail"
    assert doc["reference"] is None
    assert doc["data"] == {"repo": "flower_photos", "branch": "master", "commit": "c" * 32}
    assert doc["summary"]["images"] == 4
    assert doc["summary"]["classes"] == {"a": 2, "b": 1}
    assert [f["check"] for f in doc["findings"]] == ["class_overlap", "label_issue"]
    assert doc["findings"][0]["introduced_by"] == []
    assert doc["timings"] == {"total": 1.0}


def test_extra_keys_cannot_overwrite_the_contract():
    with pytest.raises(ValueError, match="'verdict'"):
        audit_document([], data_ref={}, reference_ref=None, labels=[], extra={"verdict": "pass"})


def test_round_trip_through_dict():
    f = _f()
    assert Finding.from_dict(f.to_dict()) == f
