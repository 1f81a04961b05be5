"""The gate reads the Audit verdict; fail, missing or foreign audits block the model."""

from __future__ import annotations

import json

import pytest

from conversion.gate import check_gate, decide
from pipelines.errors import GateBlocked
from tests.audits import FAILING, audit


def test_fail_verdict_blocks_with_commit_count_and_top_checks():
    with pytest.raises(GateBlocked) as e:
        decide(audit("fail", FAILING))
    assert (
        str(e.value)
        == "gate blocked: audit c0ffee failed: 3 findings (class_overlap, lookalike_class)"
    )


@pytest.mark.parametrize("verdict", ["pass", "warn"])
def test_pass_and_warn_let_the_model_through(verdict):
    d = decide(audit(verdict, [{"check": "label_issue", "severity": "warn"}]))
    assert d.verdict == verdict and d.commit == "c0ffee" and d.checks == ["label_issue"]


def test_audit_of_another_data_commit_blocks():
    with pytest.raises(GateBlocked, match="gate blocked: audit c0ffee is of flower_photos"):
        decide(audit("pass"), data_commit="beef")


def test_the_refusal_names_the_classes_of_each_top_check():
    findings = [
        {"check": "lookalike_class", "severity": "fail", "classes": ["orchids", "tulips"]},
        {"check": "label_issue", "severity": "warn", "classes": ["daisy", "roses"]},
    ]
    with pytest.raises(GateBlocked) as e:
        decide(audit("fail", findings))
    assert (
        str(e.value)
        == "gate blocked: audit c0ffee failed: 1 findings (lookalike_class orchids/tulips)"
    )


def test_a_model_of_several_data_commits_passes_with_an_audit_of_one_of_them():
    assert decide(audit("pass"), data_commits=["beef", "c0ffee"]).commit == "c0ffee"
    with pytest.raises(GateBlocked, match="but this model comes from commit beef, f00d"):
        decide(audit("pass"), data_commits=["f00d", "beef"])


@pytest.mark.parametrize("verdict", [None, "maybe"])
def test_an_audit_without_a_verdict_blocks(verdict):
    with pytest.raises(GateBlocked, match=f"has verdict {verdict!r}, expected pass, warn or fail"):
        decide(audit(verdict))


def test_not_an_audit_document_blocks():
    with pytest.raises(GateBlocked, match=r"is not a tulip\.audit/v1 document"):
        decide({"verdict": "pass"})


def test_missing_audit_json_blocks(tmp_path):
    with pytest.raises(GateBlocked) as e:
        check_gate(tmp_path)
    assert str(e.value) == f"gate blocked: no audit.json in {tmp_path}"


def test_audit_json_is_read_from_the_directory(tmp_path):
    (tmp_path / "audit.json").write_text(json.dumps(audit("pass")))
    assert check_gate(tmp_path).verdict == "pass"
    (tmp_path / "audit.json").write_text("{not json")
    with pytest.raises(GateBlocked, match="cannot be read as JSON"):
        check_gate(tmp_path)
