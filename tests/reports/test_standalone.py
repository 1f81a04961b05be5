"""The standalone report.html: self-contained, offline, escaped."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest

from reports.standalone import images_from_dirs, render_report

SCRIPT = "<script>alert(1)</script>"


def _doc(classes: dict[str, str], *, label_issue: str | None = None) -> dict:
    """An audit of the given class folders (label -> flower folder with real photos)."""
    findings = [
        {
            "check": "class_overlap",
            "severity": "fail",
            "classes": list(classes)[:2],
            "score": 0.95,
            "files": [],
            "introduced_by": [{"repo": "flowers", "commit": "c" * 32}],
            "message": f"{next(iter(classes))} looks like {list(classes)[1]} </script><script>alert(2)</script>",
        }
    ]
    if label_issue:
        findings.append(
            {
                "check": "label_issue",
                "severity": "warn",
                "classes": [list(classes)[1], "x"],
                "score": 0.7,
                "files": [label_issue],
                "introduced_by": [],
                "message": "looks like x",
            }
        )
    labels = list(classes)
    return {
        "schema": "tulip.audit/v1",
        "verdict": "fail",
        "data": {"repo": "flowers", "branch": "master", "commit": "c" * 32},
        "reference": None,
        "summary": {"images": 40, "classes": dict.fromkeys(labels, 20)},
        "findings": findings,
        "overlap": {"labels": labels, "matrix": [[1, 0.95], [0.95, 1]]},
        "projection": {
            "method": "pca",
            "points": [
                {"x": i, "y": i % 7, "label": labels[i % 2], "path": f"/{labels[i % 2]}/{i}.jpg"}
                for i in range(40)
            ],
        },
    }


@pytest.fixture
def photo_dirs(tmp_path, flowers):
    """A data folder whose classes are real photos: `<script>...` is impossible as a folder name
    (it holds '/'), so the hostile name lives in the audit document; a folder gets the other."""
    import shutil

    root = tmp_path / "flowers"
    for label, source in (
        ("orchids", "tulips"),
        ("tulips", "tulips"),
        ("<b onmouseover=alert(1)>", "daisy"),
    ):
        (root / label).mkdir(parents=True)
        for p in sorted((flowers / source).glob("*.jpg"))[:20]:
            shutil.copy(p, root / label / p.name)
    return root


def test_report_is_self_contained_with_no_url_outside_the_file(photo_dirs):
    html = render_report(
        _doc({"orchids": "", "tulips": ""}), images=images_from_dirs({"flowers": photo_dirs})
    )
    assert not re.search(r"https?://", html), "no absolute URL of any kind"
    for attr in re.findall(r'\b(?:src|href|action|xlink:href)\s*=\s*"([^"]*)"', html):
        assert attr.startswith(("data:", "#")), attr
    assert "<link" not in html and "@import" not in html
    assert all(u.startswith(("#", "data:")) for u in re.findall(r"url\(([^)]*)\)", html))
    assert re.findall(r"<script[^>]*\bsrc=", html) == []
    meta = unescape(
        re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)"', html).group(1)
    )
    assert "default-src 'none'" in meta and "img-src data:" in meta


def test_thumbnails_are_downscaled_data_uris_capped_per_class(photo_dirs):
    import base64
    import io

    from PIL import Image

    html = render_report(
        _doc({"orchids": "", "tulips": ""}), images=images_from_dirs({"flowers": photo_dirs})
    )
    uris = re.findall(r'src="data:image/jpeg;base64,([^"]+)"', html)
    assert len(uris) == 24  # 20 photos per class on disk, 12 per side shown
    sizes = {Image.open(io.BytesIO(base64.b64decode(u))).size for u in uris}
    assert max(max(s) for s in sizes) <= 112
    assert len(html) < 400_000


def test_hostile_labels_and_messages_are_text_in_html_svg_and_json(photo_dirs):
    doc = _doc(
        {SCRIPT: "", "<b onmouseover=alert(1)>": ""}, label_issue="/<b onmouseover=alert(1)>/x.jpg"
    )
    html = render_report(doc, images=images_from_dirs({"flowers": photo_dirs}))
    assert SCRIPT not in html and "<b onmouseover" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # The embedded JSON closes no element: '<' and '>' are \u escapes, JSON.parse gives the text back.
    block = re.search(
        r'<script type="application/json" id="audit-data">(.*?)</script>', html, re.S
    ).group(1)
    assert "</" not in block and "<" not in block
    assert json.loads(block)["findings"][0]["classes"][0] == SCRIPT
    assert json.loads(block)["projection"]["points"] == "omitted"
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts == ['<script type="application/json" id="audit-data">', "<script>", "<script>"]


def test_directory_images_do_not_leave_their_mount(tmp_path):
    (tmp_path / "data" / "a").mkdir(parents=True)
    (tmp_path / "secret.jpg").write_bytes(b"secret")
    (tmp_path / "data" / "a" / "link.jpg").symlink_to(tmp_path / "secret.jpg")
    images = images_from_dirs({"d": tmp_path / "data"})
    assert images("d", "/../secret.jpg") is None
    assert images("d", "/a/link.jpg") is None  # a link out of the mount
    assert images("other", "/a/x.jpg") is None
    assert images.list("d", "..", 10) == []


def test_report_without_images_or_extras_still_renders():
    doc = {
        "schema": "tulip.audit/v1",
        "verdict": "pass",
        "data": {"repo": "r", "commit": None},
        "reference": None,
        "summary": {"images": 0, "classes": {}},
        "findings": [],
    }
    html = render_report(doc)
    assert "PASS" in html and "No findings" in html


def test_a_large_audit_keeps_the_top_findings_of_each_check_and_counts_the_rest():
    """50k findings would make a file of tens of megabytes: the page and its embedded JSON keep
    the best-scored FINDINGS_SHOWN_PER_CHECK of each check, and say how many more there are."""
    from reports.audit_view import FINDINGS_SHOWN_PER_CHECK as TOP

    doc = _doc({"a": "", "b": ""})
    n_issues = TOP + 140
    doc["findings"] += [
        {
            "check": "label_issue",
            "severity": "warn",
            "classes": ["a", "b"],
            "score": round(0.1 + i / (2 * n_issues), 5),
            "files": [f"/a/issue{i:04d}.jpg"],
            "introduced_by": [],
            "message": f"/a/issue{i:04d}.jpg looks like b",
        }
        for i in range(n_issues)
    ]
    doc["findings"] += [
        {"check": "duplicate", "severity": "info", "classes": ["a"], "score": 0.99,
         "files": [f"/a/d{i}.jpg", f"/a/e{i}.jpg"], "introduced_by": [], "message": f"copy {i}"}
        for i in range(3)
    ]  # fmt: skip
    html = render_report(doc)
    # the best-scored issue is shown, the worst one kept back
    assert f"issue{n_issues - 1:04d}.jpg" in html
    assert "issue0000.jpg" not in html
    assert "and 140 more label_issue findings" in html
    assert f"keeps the top {TOP} findings of each check" in html
    block = re.search(
        r'<script type="application/json" id="audit-data">(.*?)</script>', html, re.S
    ).group(1)
    kept = json.loads(block)
    assert kept["findings_omitted"] == {"label_issue": 140}
    by_check = {}
    for f in kept["findings"]:
        by_check[f["check"]] = by_check.get(f["check"], 0) + 1
    assert by_check == {"class_overlap": 1, "label_issue": TOP, "duplicate": 3}
    # the kept issues are exactly the top ones by score
    kept_scores = sorted(f["score"] for f in kept["findings"] if f["check"] == "label_issue")
    assert kept_scores[0] > max(f["score"] for f in doc["findings"][1 : 1 + n_issues - TOP]), (
        "a lower-scored issue was kept over a higher one"
    )


def test_lineage_is_drawn_from_node_link_json():
    link = {
        "graph": {"center": "commit:flowers@" + "c" * 32},
        "nodes": [
            {
                "id": "commit:flowers@" + "c" * 32,
                "type": "commit",
                "kind": "data",
                "repo": "flowers",
                "commit": "c" * 32,
                "label": "flowers@cccc",
                "description": SCRIPT,
            },
            {
                "id": "commit:Audit@" + "c" * 32,
                "type": "commit",
                "kind": "output",
                "repo": "Audit",
                "commit": "c" * 32,
                "label": "Audit@cccc",
            },
        ],
        "links": [
            {
                "source": "commit:flowers@" + "c" * 32,
                "target": "commit:Audit@" + "c" * 32,
                "key": "provenance",
                "kind": "provenance",
            }
        ],
    }
    html = render_report(_doc({"a": "", "b": ""}), lineage=link)
    assert 'id="lineage"' in html and 'data-node="commit:Audit@' in html
    assert SCRIPT not in html


def test_the_stage_command_writes_the_report_with_lineage_from_the_store(
    scenario, photo_dirs, tmp_path
):
    """`python -m reports.standalone`, as pipelines/audit.json runs it after the audit step."""
    import os
    import subprocess
    import sys

    doc = _doc({"orchids": "", "tulips": ""})
    doc["data"] = {"repo": "flowers", "branch": "master", "commit": scenario.orchids_commit}
    audit = tmp_path / "audit.json"
    audit.write_text(json.dumps(doc))
    out = tmp_path / "report.html"
    env = {**os.environ, "TULIP_ROOT": str(scenario.root)}
    # The doc names repo "flowers"; the scenario's commit lives in flower_photos, so the lineage
    # lookup finds no node and the report is still written, without it.
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "reports.standalone",
            "--audit",
            str(audit),
            "--data",
            str(photo_dirs),
            "--reference",
            str(tmp_path / "absent"),
            "--out",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    html = out.read_text()
    assert html.count("data:image/jpeg") == 24 and 'id="lineage"' not in html
    doc["data"]["repo"] = "flower_photos"
    audit.write_text(json.dumps(doc))
    r = subprocess.run(
        [sys.executable, "-m", "reports.standalone", "--audit", str(audit), "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    html = out.read_text()
    assert 'id="lineage"' in html and f'data-node="commit:Audit@{scenario.audit_commit}"' in html
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "reports.standalone",
            "--audit",
            str(tmp_path / "nope.json"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith(
        "report failed: cannot read the audit document"
    )
