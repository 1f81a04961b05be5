"""The export asks the same gate as Convert (``conversion.gate``): schema, verdict, and that
the audit is of the data the model was built from. No store, no model: a ``ModelSource`` as
``mobile.source`` builds it, with a chosen audit."""

from __future__ import annotations

import pytest

from mobile.metadata import AuditRef, CommitRef
from mobile.release import gate_objection, gate_objections
from mobile.source import AuditInfo, ModelSource
from pipelines.info import CommitInfo
from tests.audits import audit

DATA = "d" * 32


def commit(repo: str, cid: str, *, error: str | None = None) -> CommitInfo:
    return CommitInfo(repo, "master", cid, "AUTO", None, 1.0, 2.0, 10, error=error)


def source(doc: dict | None, *, error: str | None = None) -> ModelSource:
    audit_commit = commit("Audit", "a" * 32)
    info = (
        None
        if doc is None
        else AuditInfo(AuditRef(str(doc.get("verdict")), "Audit", "a" * 32), doc, audit_commit)
    )
    model = commit("Convert", "c" * 32)
    return ModelSource(
        requested=commit("Convert", "e" * 32, error=error) if error else model,
        commit=model,
        content=b"",
        labels=("daisy",),
        labels_source="x",
        data=(CommitRef("flower_photos", DATA), CommitRef("label_reference", "f" * 32)),
        audit=info,
        audit_problem=None if doc is not None else "Convert@ccc has no audit",
        train=None,
        blocked_audit=None,
        metrics=None,
        conversion=None,
    )


def test_an_audit_of_the_models_own_data_lets_it_through():
    assert gate_objections(source(audit("pass", commit=DATA))) == []
    assert gate_objection(source(audit("warn", commit=DATA))) is None


def test_an_audit_of_another_data_commit_cannot_open_the_export():
    objection = gate_objection(source(audit("pass", commit="0" * 32)))
    assert objection.startswith(f"the gate blocks Convert@{'c' * 32} on Audit@{'a' * 32}: ")
    assert f"audit {'0' * 32} is of flower_photos commit {'0' * 32}" in objection
    assert DATA in objection


@pytest.mark.parametrize(
    ("doc", "said"),
    [
        ({"verdict": "pass"}, "is not a tulip.audit/v1 document"),
        (
            audit(
                "fail",
                [
                    {
                        "check": "lookalike_class",
                        "severity": "fail",
                        "classes": ["orchids", "tulips"],
                    }
                ],
                commit=DATA,
            ),
            "failed: 1 findings (lookalike_class orchids/tulips)",
        ),
        (audit("maybe", commit=DATA), "has verdict 'maybe'"),
    ],
)
def test_a_bad_or_failing_audit_is_an_objection(doc, said):
    assert said in gate_objection(source(doc))


def test_no_audit_and_a_blocked_commit_are_both_named():
    objections = gate_objections(source(None, error="gate blocked: audit x failed"))
    assert objections[0].startswith(f"Convert@{'e' * 32} holds no model of its own")
    assert objections[1] == "Convert@ccc has no audit"
