"""Per-image explanations on the audit page: neighbours in the data and the reference, the
class probabilities, the signals that fired."""

from __future__ import annotations

import json

import pytest

EXPLAINED = {
    "check": "label_issue", "severity": "warn", "classes": ["roses", "tulips"], "score": 0.9,
    "files": ["/roses/odd.jpg"], "introduced_by": [], "message": "odd.jpg looks like tulips",
    "details": {"signals": ["ranked"], "explanation": {
        "probabilities": {"tulips": 0.81, "roses": 0.12},
        "signals": ["ranked", "confident"],
        "neighbours": [["/tulips/t1.jpg", "tulips", 0.93], ["/tulips/t2.jpg", "tulips", 0.9]],
        "gallery": "reference",
        "reference": [["/tulips/ref_3.jpg", "tulips", 0.88]],
    }},
}  # fmt: skip
MALFORMED = {
    "check": "label_issue", "severity": "warn", "classes": ["daisy", "roses"], "score": 0.5,
    "files": ["/daisy/x.jpg"], "introduced_by": [], "message": "x.jpg looks like roses",
    "details": {"explanation": {"probabilities": [1, 2], "neighbours": [["only-one"]], "reference": 7}},
}  # fmt: skip


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.setenv("TULIP_NO_AUTORUN", "1")
    from pipelines.embedded.store import EmbeddedStore
    from reports import create_app

    doc = {
        "schema": "tulip.audit/v1", "verdict": "warn",
        "data": {"repo": "flower_photos", "branch": "master", "commit": "c" * 32},
        "reference": {"repo": "label_reference", "branch": "master", "commit": "d" * 32},
        "summary": {"images": 3, "classes": {"roses": 1, "daisy": 1, "tulips": 1}},
        "findings": [EXPLAINED, MALFORMED],
    }  # fmt: skip
    store = EmbeddedStore(tmp_path / "store")
    store.create_repo("Audit")
    with store.start_commit("Audit") as w:
        w.put_bytes("/audit.json", json.dumps(doc).encode())
    store.close()
    app = create_app(
        {"TULIP_ROOT": str(tmp_path / "store"), "TULIP_CACHE_DIR": str(tmp_path / "c"),
         "TESTING": True}
    )  # fmt: skip
    return app.test_client()


def test_the_audit_page_explains_each_flagged_image(client):
    r = client.get("/audits/Audit/master", follow_redirects=True)
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    explain = html[html.index('class="explain"') :]
    explain = explain[: explain.index("</li>")]
    assert "out-of-sample probabilities" in explain
    assert '<span class="label">tulips</span> 0.81' in explain
    assert '<span class="signal">confident</span>' in explain
    assert "nearest in the data" in explain and "<code>/tulips/t1.jpg</code>" in explain
    assert "nearest in the reference" in explain and "<code>/tulips/ref_3.jpg</code>" in explain
    # a malformed explanation (another tool's document) is skipped, not a 500
    assert "only-one" not in html and "x.jpg looks like roses" in html
