"""The audit page and its JSON at scale: findings filtered and paged on the server."""

from __future__ import annotations

import json

import pytest

from reports.audit_view import FindingFilter, build_view
from reports.standalone import render_report

CHECKS = ("label_issue", "duplicate")


def _doc(n: int = 730) -> dict:
    commits = ["a" * 32, "b" * 32]
    findings = [
        {"check": "class_overlap", "severity": "fail", "classes": ["orchids", "tulips"],
         "score": 0.9, "files": ["/orchids/1.jpg"], "introduced_by": [
             {"repo": "flower_photos", "commit": commits[0]}],
         "message": "orchids and tulips are indistinguishable"}
    ]  # fmt: skip
    for i in range(n):
        check = CHECKS[i % 2]
        findings.append(
            {
                "check": check,
                "severity": "warn" if check == "label_issue" else "info",
                "classes": ["daisy", "roses"] if i % 3 else ["roses", "tulips"],
                "score": round(1 - i / (2 * n), 4),
                "files": [f"/daisy/{i:05d}.jpg"],
                "introduced_by": [{"repo": "flower_photos", "commit": commits[i % 2]}],
                "message": f"finding number {i}",
            }
        )
    return {
        "schema": "tulip.audit/v1",
        "verdict": "fail",
        "data": {"repo": "flower_photos", "branch": "master", "commit": commits[1]},
        "reference": None,
        "summary": {"images": 2000, "classes": {"daisy": 1000, "roses": 500, "tulips": 500}},
        "findings": findings,
    }


@pytest.fixture
def audit_store(tmp_path, monkeypatch):
    monkeypatch.setenv("TULIP_NO_AUTORUN", "1")
    from pipelines.embedded.store import EmbeddedStore

    store = EmbeddedStore(tmp_path / "store")
    store.create_repo("Audit")
    with store.start_commit("Audit", description="a large audit") as w:
        w.put_bytes("/audit.json", json.dumps(_doc()).encode())
    commit = store.resolve("Audit@master").id
    store.close()
    return tmp_path / "store", commit


@pytest.fixture
def big_client(audit_store, tmp_path):
    from reports import create_app

    root, _ = audit_store
    app = create_app(
        {"TULIP_ROOT": str(root), "TULIP_CACHE_DIR": str(tmp_path / "c"), "TESTING": True}
    )
    return app.test_client()


def test_filters_intersect_and_pages_cover_every_match():
    view = build_view(_doc())
    index = view.index
    everything = index.page(FindingFilter(per_page=500))
    assert everything.total == 731 and everything.pages == 2
    flt = FindingFilter(check="label_issue", cls="tulips", commit="aaaa", per_page=20)
    first = index.page(flt)
    want = [
        f.index
        for f in view.findings
        if f.check == "label_issue" and "tulips" in f.classes
        and f.introduced_by[0].commit.startswith("aaaa")
    ]  # fmt: skip
    assert first.total == len(want) > 20
    seen = []
    for p in range(1, first.pages + 1):
        seen += [f.index for f in index.page(FindingFilter(**{**flt.__dict__, "page": p})).findings]
    assert seen == want  # every match once, in the document's order
    assert index.page(FindingFilter(severity="fail")).total == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [({"page": "0"}, "page must be between"), ({"per_page": "x"}, "per_page must be a whole"),
     ({"severity": "bad"}, "severity must be one of")],
)  # fmt: skip
def test_malformed_arguments_name_themselves(args, message):
    with pytest.raises(ValueError, match=message):
        FindingFilter.from_args(args)


def test_the_page_shows_one_page_of_findings_with_working_filters(big_client, audit_store):
    _, commit = audit_store
    html = big_client.get(f"/audits/Audit/{commit}").get_data(as_text=True)
    assert html.count('<li class="finding"') == 50
    assert "findings 1–50 of 731" in html
    assert f'href="/audits/Audit/{commit}?page=15"' in html  # the last page
    html = big_client.get(f"/audits/Audit/{commit}?check=duplicate&class=tulips&page=2").get_data(
        as_text=True
    )
    assert html.count('<li class="finding"') == 50
    assert 'data-check="label_issue"' not in html.split('id="findings"')[1].split("</section>")[0]
    r = big_client.get(f"/audits/Audit/{commit}?page=abc")
    assert r.status_code == 400 and "page must be a whole number" in r.get_data(as_text=True)


def test_the_json_api_pages_too(big_client, audit_store):
    _, commit = audit_store
    d = big_client.get(f"/api/audits/Audit/{commit}?severity=warn&per_page=100").get_json()
    assert len(d["audit"]["findings"]) == 100
    assert {f["check"] for f in d["audit"]["findings"]} == {"label_issue"}
    assert d["page"]["total"] == 365 and d["page"]["pages"] == 4 and d["page"]["of"] == 731
    nxt = big_client.get(d["page"]["next"]).get_json()
    assert nxt["audit"]["findings"][0]["message"] != d["audit"]["findings"][0]["message"]
    assert d["audit"]["summary"]["images"] == 2000  # the rest of the document is whole


def test_standalone_report_keeps_the_top_findings_of_each_check():
    html = render_report(_doc())
    embedded = json.loads(html.split('id="audit-data">')[1].split("</script>")[0])
    kept = [f for f in embedded["findings"] if f["check"] == "label_issue"]
    assert len(kept) == 60 and min(f["score"] for f in kept) >= 0.9
    assert embedded["findings_omitted"] == {"duplicate": 305, "label_issue": 305}
    assert "and 305 more label_issue findings" in html
    assert html.count('<li class="finding"') == 121
