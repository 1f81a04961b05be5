import copy

import jsonschema
import pytest

from auditor.audit import run_audit
from auditor.schema import validate_document
from pipelines.records import EmbeddingRecord
from tests.auditor.synthetic import make

REF = {"repo": "flower_photos", "branch": "master", "commit": "a" * 32}


@pytest.fixture(scope="module")
def document():
    data = make([("daisy", 0, 25), ("tulips", 2, 25), ("orchids", 2, 25)])
    data.unreadable.append(
        EmbeddingRecord(
            "/daisy/.DS_Store", "daisy", "0" * 64, 6, "synthetic", "unreadable", "not an image"
        )
    )
    gallery = make([("daisy", 0, 10), ("tulips", 2, 10)], seed=9, prefix="ref")
    return run_audit(
        data,
        reference=gallery,
        data_ref=REF,
        reference_ref={"repo": "label_reference", "commit": "b" * 32},
    ).document


def test_an_audit_document_validates(document):
    validate_document(document)
    assert {f["check"] for f in document["findings"]} >= {
        "class_overlap",
        "lookalike_class",
        "unreadable_file",
    }


def test_a_label_issue_with_two_files_does_not(document):
    doc = copy.deepcopy(document)
    doc["findings"].append(
        {
            "check": "label_issue",
            "severity": "warn",
            "classes": ["a", "b"],
            "score": 0.5,
            "files": ["/a/1.jpg", "/a/2.jpg"],
            "introduced_by": [],
            "message": "m",
        }
    )
    with pytest.raises(jsonschema.ValidationError):
        validate_document(doc)


@pytest.mark.parametrize(
    "breakage",
    [
        lambda d: d.update(schema="tulip.audit/v2"),
        lambda d: d.update(verdict="ok"),
        lambda d: d.pop("reference"),
        lambda d: d["findings"][0].update(severity="error"),
        lambda d: d["findings"][0].pop("introduced_by"),
        lambda d: d["summary"]["classes"].update(daisy=-1),
    ],
)
def test_contract_breaks_are_caught(document, breakage):
    doc = copy.deepcopy(document)
    breakage(doc)
    with pytest.raises(jsonschema.ValidationError):
        validate_document(doc)
