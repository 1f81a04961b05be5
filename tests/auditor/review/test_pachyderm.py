"""The review loop on a Pachyderm cluster (the pachd protocol double, over real gRPC through
pachyderm-sdk): the fix is a normal commit with metadata, moves are CopyFile, the ledger is a
versioned repo of the cluster, and an accepted file is withheld from the next audit."""

from __future__ import annotations

import hashlib
import json

import pytest

from auditor.findings import Finding, audit_document
from auditor.review import apply_review, list_review, load_ledger, parse_decisions
from auditor.review.withhold import withhold_accepted
from pipelines.layout import REVIEW_BY_KEY, REVIEW_KEY, REVIEWS_REPO
from pipelines.pachyderm import PACHD_ADDRESS_ENV, PachydermBackend, PachydermCommitWriter
from tests.pachyderm_double import PachdProtocolDouble


@pytest.fixture
def cluster(monkeypatch):
    with PachdProtocolDouble(auto_run=False) as pachd:
        monkeypatch.setenv(PACHD_ADDRESS_ENV, pachd.address)
        b = PachydermBackend.from_environment()
        yield b, pachd
        b.close()


def image(name: str) -> bytes:
    return f"picture {name}".encode()


def seeded(b: PachydermBackend) -> tuple[str, dict]:
    b.create_repo("flower_photos")
    with b.start_commit("flower_photos", description="add orchids") as w:
        for i in range(3):
            w.put_bytes(f"/orchids/{i}.jpg", image(f"tulip {i}"))
            w.put_bytes(f"/daisy/{i}.jpg", image(f"daisy {i}"))
    data = w.id
    orchids = [f"/orchids/{i}.jpg" for i in range(3)]
    findings = [
        Finding("lookalike_class", "fail", ["orchids", "tulips"], 0.9, orchids, "like tulips"),
        Finding("label_issue", "warn", ["daisy", "orchids"], 0.7, ["/daisy/2.jpg"], "suspect"),
    ]
    doc = audit_document(
        findings,
        data_ref={"repo": "flower_photos", "branch": "master", "commit": data},
        reference_ref=None,
        labels=["orchids"] * 3 + ["daisy"] * 3,
    )
    b.create_repo("Audit")  # a user repo standing in for the Audit pipeline's output
    with b.start_commit("Audit") as w:
        w.put_bytes("/audit.json", json.dumps(doc).encode())
    return w.id, doc


def test_a_review_on_pachyderm_is_a_normal_commit_with_metadata(cluster, monkeypatch):
    b, _pachd = cluster
    audit, doc = seeded(b)
    sent = []
    requests = PachydermCommitWriter.requests

    def spy(self, failure):
        for r in requests(self, failure):
            sent.append(r)
            yield r

    monkeypatch.setattr(PachydermCommitWriter, "requests", spy)
    lookalike, issue = (f["id"] for f in doc["findings"])
    decisions = parse_decisions(
        json.dumps(
            [
                {"finding": lookalike, "action": "rename", "to": "tulips"},
                {"finding": issue, "action": "accept"},
            ]
        ),
        source="d",
    )
    result = apply_review(b, f"Audit@{audit}", decisions, by="frank").as_dict()
    fix = b.inspect_commit("flower_photos", result["commit"]["id"])
    copies = [r.copy_file for r in sent if r.copy_file and r.copy_file.dst]
    assert sorted(c.dst for c in copies) == [f"/tulips/{i}.jpg" for i in range(3)]
    assert not [r for r in sent if r.add_file and "tulips" in (r.add_file.path or "")]
    assert fix.origin == "USER" and fix.finished is not None
    assert fix.metadata[REVIEW_KEY] == result["review"] and fix.metadata[REVIEW_BY_KEY] == "frank"
    files = {
        f.path: b.get_file("flower_photos", fix.id, f.path)
        for f in b.walk_files("flower_photos", fix.id)
    }
    assert files == {
        **{f"/tulips/{i}.jpg": image(f"tulip {i}") for i in range(3)},
        **{f"/daisy/{i}.jpg": image(f"daisy {i}") for i in range(3)},
    }
    # the ledger is a repo of the cluster, keyed by the sha256 of the content
    assert [c.id for c in b.list_commits(REVIEWS_REPO)] == [result["ledger"]["commit"]]
    sha = hashlib.sha256(image("daisy 2")).hexdigest()
    [entry] = load_ledger(b)[sha]
    assert (entry.action, entry.check, entry.label, entry.by) == (
        "accept",
        "label_issue",
        "daisy",
        "frank",
    )
    decided = {
        f["id"]: f["decision"]["action"]
        for f in list_review(b, f"Audit@{audit}").as_dict()["findings"]
    }
    assert decided == {lookalike: "rename", issue: "accept"}
    # a later audit of the same content withholds the accepted label issue
    later, withheld = withhold_accepted(
        doc, sha256_of={"/daisy/2.jpg": sha}, ledger=load_ledger(b, [sha])
    )
    assert withheld == {issue} and later["review"]["not_reflagged"] == 1
    assert [f["check"] for f in later["findings"]] == ["lookalike_class"]
