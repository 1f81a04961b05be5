"""The report pages and their JSON twins, on the real scenario store."""

from __future__ import annotations

import re

from tests.reports.scenario import EVIL_CLASS, EVIL_DESCRIPTION


def test_overview_lists_repos_pipelines_jobs_and_the_audit_timeline(client, scenario):
    html = client.get("/").get_data(as_text=True)
    for name in ("flower_photos", "Audit", "Train", "Convert"):
        assert name in html
    assert f"/audits/Audit/{scenario.audit_commit}" in html
    api = client.get("/api/overview").get_json()
    verdicts = {a["commit"]: a["verdict"] for a in api["audits"]}
    assert verdicts[scenario.audit_commit] == "fail"
    assert verdicts[scenario.first_audit] == "pass"
    assert api["audits"][0]["commit"] == scenario.audit_commit  # newest first
    assert {p["name"] for p in api["pipelines"]} == {"Audit", "Train", "Convert"}
    assert all(j["state"] == "success" for j in api["jobs"])


def test_audit_page_shows_verdict_finding_side_by_side_thumbnails_and_blame(client, scenario):
    r = client.get(f"/audits/Audit/{scenario.audit_commit}")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert 'data-verdict="fail"' in html
    assert "orchids and tulips are indistinguishable" in html
    comparison = html[html.index('id="comparisons"') : html.index('id="charts"')]
    orchid_thumbs = re.findall(
        rf"/thumbs/flower_photos/{scenario.orchids_commit}/orchids/[^\"?]+", comparison
    )
    tulip_thumbs = re.findall(
        rf"/thumbs/flower_photos/{scenario.orchids_commit}/tulips/[^\"?]+", comparison
    )
    assert len(orchid_thumbs) == 6 and len(tulip_thumbs) == 6
    assert f'href="/commits/flower_photos/{scenario.orchids_commit}"' in html  # blame link
    assert '<svg class="heatmap"' in html and '<svg class="scatter"' in html
    doc = client.get(f"/api/audits/Audit/{scenario.audit_commit}").get_json()["audit"]
    on_disk = client.get(f"/api/commits/flower_photos/{scenario.orchids_commit}").get_json()
    assert doc["summary"]["images"] == on_disk["file_count"]  # the audit saw every image
    assert html.count("<circle") == doc["summary"]["images"]  # and the map shows each one


def test_audit_json_mirrors_the_page(client, scenario):
    d = client.get(f"/api/audits/Audit/{scenario.audit_commit}").get_json()
    assert d["audit"]["verdict"] == "fail"
    assert d["derived"]["comparisons"][0]["suspect"]["class"] == "orchids"
    assert len(d["derived"]["comparisons"][0]["other"]["files"]) == 6
    assert d["derived"]["blame"][0] == {
        "repo": "flower_photos",
        "commit": scenario.orchids_commit,
        "findings": [0, 1],
        "checks": ["class_overlap", "new_label"],
    }
    assert d["links"]["report"].endswith("/report.html")


def test_branch_reference_redirects_to_the_commit_page(client, scenario):
    r = client.get("/audits/Audit/master")
    assert r.status_code == 302
    assert r.headers["Location"].endswith(f"/audits/Audit/{scenario.audit_commit}")
    assert client.get("/audits/Audit/master^").headers["Location"].endswith(scenario.first_audit)


def test_missing_things_are_404s_that_name_them(client, scenario):
    r = client.get("/audits/Audit/" + "0" * 32)
    assert r.status_code == 404 and "0000000000" in r.get_data(as_text=True)
    r = client.get(f"/audits/flower_photos/{scenario.orchids_commit}")
    assert r.status_code == 404 and "holds no /audit.json" in r.get_data(as_text=True)
    r = client.get("/api/commits/nosuchrepo/master")
    assert r.status_code == 404 and "nosuchrepo" in r.get_json()["error"]


def test_commit_page_files_diff_provenance_and_escaped_description(client, scenario):
    html = client.get(f"/commits/flower_photos/{scenario.orchids_commit}").get_data(as_text=True)
    assert "add orchids &lt;script&gt;alert(&#34;description&#34;)&lt;/script&gt;" in html
    assert EVIL_DESCRIPTION not in html
    assert "6 added" not in html and "8 added" in html  # 6 orchids + 2 evil-class images
    d = client.get(f"/api/commits/flower_photos/{scenario.orchids_commit}").get_json()
    assert d["commit"]["description"] == EVIL_DESCRIPTION
    assert d["diff"]["counts"] == {"added": 8, "modified": 0, "deleted": 0}
    assert d["diff"]["against"] == scenario.base_commit
    assert d["file_count"] == 26
    assert {r["repo"] for r in d["subvenance"]} >= {"Audit", "Train"}
    audit = client.get(f"/api/commits/Audit/{scenario.audit_commit}").get_json()
    assert {p["repo"] for p in audit["commit"]["direct_provenance"]} == {
        "flower_photos",
        "Audit.spec",
    }
    assert audit["holds"]["audit"] and audit["holds"]["report"]


def test_commit_files_are_paginated(client, scenario):
    from reports.views import commits

    old = commits.PAGE_SIZE
    commits.PAGE_SIZE = 10
    try:
        p1 = client.get(f"/api/commits/flower_photos/{scenario.orchids_commit}?page=1").get_json()
        p3 = client.get(f"/api/commits/flower_photos/{scenario.orchids_commit}?page=3").get_json()
        beyond = client.get(
            f"/api/commits/flower_photos/{scenario.orchids_commit}?page=99"
        ).get_json()
    finally:
        commits.PAGE_SIZE = old
    assert p1["pages"] == 3 and len(p1["files"]) == 10 and len(p3["files"]) == 6
    assert beyond["page"] == 3
    assert not {f["path"] for f in p1["files"]} & {f["path"] for f in p3["files"]}


def test_model_page_metrics_confusion_matrix_and_variants(client, scenario):
    html = client.get(f"/models/Train/{scenario.train_commit}").get_data(as_text=True)
    assert "Confusion matrix" in html and "int8" in html and "96.7%" in html
    d = client.get(f"/api/models/Convert/{scenario.convert_commit}").get_json()
    assert d["train"]["id"] == scenario.train_commit  # found from the Convert commit
    assert d["conversion"]["published"]["variant"] == "int8"
    labels = d["metrics"]["test"]["confusion_matrix"]["labels"]
    assert "orchids" in labels and EVIL_CLASS in labels
    assert client.get(f"/models/flower_photos/{scenario.base_commit}").status_code == 404


def test_lineage_of_the_orchids_commit_reaches_audit_model_and_conversion(client, scenario):
    d = client.get(f"/api/lineage/flower_photos/{scenario.orchids_commit}").get_json()
    nodes = {n["id"]: n for n in d["nodes"]}
    assert d["center"] == f"commit:flower_photos@{scenario.orchids_commit}"
    for repo, cid, role in (
        ("Audit", scenario.audit_commit, "audit"),
        ("Train", scenario.train_commit, "model"),
        ("Convert", scenario.convert_commit, "model"),
    ):
        node = nodes[f"commit:{repo}@{cid}"]
        assert node["role"] == role
        assert node["href"] == f"/commits/{repo}/{cid}"
    assert nodes[f"commit:Audit@{scenario.audit_commit}"]["status"] == "fail"
    html = client.get(f"/lineage/flower_photos/{scenario.orchids_commit}").get_data(as_text=True)
    assert f'href="/commits/Audit/{scenario.audit_commit}"' in html


def test_thumbnails_are_jpeg_cached_on_disk_with_etag(client, scenario, tmp_path):
    d = client.get(f"/api/commits/flower_photos/{scenario.orchids_commit}").get_json()
    path = next(f["path"] for f in d["files"] if f["path"].startswith("/orchids/"))
    url = f"/thumbs/flower_photos/{scenario.orchids_commit}{path}?s=128"
    r = client.get(url)
    assert r.status_code == 200 and r.mimetype == "image/jpeg"
    assert r.data[:3] == b"\xff\xd8\xff"
    assert "immutable" in r.headers["Cache-Control"]
    cached = list((tmp_path / "cache" / "thumbs").rglob("*-128.jpg"))
    assert len(cached) == 1
    again = client.get(url, headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304
    import io

    from PIL import Image

    assert max(Image.open(io.BytesIO(r.data)).size) == 128


def test_standalone_report_is_served_sandboxed(client, scenario):
    r = client.get(f"/audits/Audit/{scenario.audit_commit}/report.html")
    assert r.status_code == 200
    assert r.headers["Content-Security-Policy"].startswith("sandbox")
    assert b"orchids and tulips are indistinguishable" in r.data
