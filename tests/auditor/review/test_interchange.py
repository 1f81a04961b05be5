"""Label Studio and CSV: tasks out (images served by ``tulip serve``, predictions set to the
suggested classes, the finding id in ``data``), decisions back in, and an export of another
project refused."""

from __future__ import annotations

import csv
import io
import json
import xml.dom.minidom

import pytest

from auditor.review import apply_review, export_review, import_review, parse_decisions
from auditor.review.interchange import EXCLUDE, NOT_SURE, ForeignExport
from tests.auditor.review.history import audit_doc, finding, story_copy


@pytest.fixture
def story(tmp_path_factory, tmp_path, monkeypatch):
    monkeypatch.setenv("TULIP_NO_AUTORUN", "1")
    s = story_copy(tmp_path_factory, tmp_path)
    store = s.open()
    yield s, store
    store.close()


def annotated(tasks: list[dict], choices: dict[str, str], *, project: int = 7) -> list[dict]:
    """What Label Studio's JSON export gives back once reviewers chose (path -> choice)."""
    out = []
    for i, t in enumerate(tasks, start=1):
        done = dict(t, id=i, project=project, annotations=[])
        if t["data"]["path"] in choices:
            result = {
                "from_name": "label",
                "to_name": "image",
                "type": "choices",
                "value": {"choices": [choices[t["data"]["path"]]]},
            }
            done["annotations"] = [
                {
                    "id": 100 + i,
                    "completed_by": {"email": "rev@example.com"},
                    "was_cancelled": False,
                    "updated_at": "2025-01-01T00:00:00Z",
                    "result": [result],
                }
            ]
        out.append(done)
    return out


def test_tasks_carry_the_image_url_the_finding_and_the_suggestion(story):
    s, store = story
    doc = audit_doc(store, s.orchids)
    exported = export_review(
        store,
        f"Audit@{s.orchids}",
        format="label-studio",
        base_url="http://tulip:8080",
        token="t0k",
    )
    tasks = json.loads(exported.text)
    files = {p for f in doc["findings"] for p in f["files"]}
    assert len(tasks) == len(files) == exported.items
    by_path = {t["data"]["path"]: t for t in tasks}
    orchid = by_path["/orchids/orchid_00.jpg"]
    assert orchid["data"]["finding"] == finding(doc, "lookalike_class")["id"]
    assert orchid["data"]["tulip_audit"] == f"Audit@{s.orchids}"
    assert orchid["data"]["image"].startswith(
        f"http://tulip:8080/files/flower_photos/{s.orchids}/orchids/orchid_00.jpg?sig="
    )
    [prediction] = orchid["predictions"]
    assert prediction["result"][0]["type"] == "choices"
    assert prediction["result"][0]["value"] == {"choices": ["tulips"]}
    odd = by_path["/roses/odd_daisy.jpg"]["predictions"][0]["result"][0]["value"]
    assert odd == {"choices": ["daisy"]}
    config = xml.dom.minidom.parseString(exported.label_config)
    values = [c.getAttribute("value") for c in config.getElementsByTagName("Choice")]
    assert {"daisy", "tulips", "orchids", EXCLUDE, NOT_SURE} <= set(values)
    [choices] = config.getElementsByTagName("Choices")
    assert choices.getAttribute("name") == prediction["result"][0]["from_name"]


def test_tulip_serve_serves_the_task_images_signed_for_its_token(story):
    from reports import create_app

    s, store = story
    tasks = json.loads(
        export_review(
            store, f"Audit@{s.orchids}", format="label-studio", base_url="", token="t0k"
        ).text
    )
    app = create_app({"TULIP_ROOT": str(s.root), "TULIP_TOKEN": "t0k", "TESTING": True})
    client = app.test_client()
    url = tasks[0]["data"]["image"]
    got = client.get(url)
    assert got.status_code == 200
    assert got.data == store.get_file("flower_photos", s.orchids, tasks[0]["data"]["path"])
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get(url.split("?")[0]).status_code == 401  # no signature, no token
    other = tasks[1]["data"]["image"].split("?")[0] + "?" + url.split("?")[1]
    assert client.get(other).status_code == 401  # a signature is for one file only
    assert client.get("/", headers={"Authorization": "Bearer t0k"}).status_code == 200


def test_annotations_come_back_as_decisions_that_apply(story):
    s, store = story
    doc = audit_doc(store, s.orchids)
    tasks = json.loads(export_review(store, f"Audit@{s.orchids}", format="label-studio").text)
    orchids = [t["data"]["path"] for t in tasks if t["data"]["path"].startswith("/orchids/")]
    choices = {p: "tulips" for p in orchids}
    choices["/roses/odd_daisy.jpg"] = "daisy"  # relabel
    choices["/sunflowers/odd_dandelion.jpg"] = "sunflowers"  # the label is right: accept
    choices[orchids[0]] = EXCLUDE
    choices[orchids[1]] = NOT_SURE
    raw = json.dumps(annotated(tasks, choices)).encode()
    imported = import_review(raw, format="label-studio", audit=f"Audit@{s.orchids}")
    assert imported.audit == f"Audit@{s.orchids}" and imported.items == len(tasks)
    actions = {d.file: (d.action, d.to) for d in imported.decisions}
    assert actions["/roses/odd_daisy.jpg"] == ("relabel", "daisy")
    assert actions["/sunflowers/odd_dandelion.jpg"] == ("accept", None)
    assert actions[orchids[0]] == ("exclude", None) and actions[orchids[1]] == ("defer", None)
    assert actions[orchids[2]] == ("relabel", "tulips")
    assert all("rev@example.com" in d.note for d in imported.decisions)
    decisions = parse_decisions(json.dumps(imported.as_dict()), source="imported.json")
    result = apply_review(store, imported.audit, decisions, by="rev", via="label-studio").as_dict()
    assert (result["moved"], result["excluded"], result["accepted"]) == (23, 1, 1)
    paths = {f.path for f in store.walk_files("flower_photos", result["commit"]["id"])}
    assert "/tulips/orchid_02.jpg" in paths and "/daisy/odd_daisy.jpg" in paths
    assert orchids[0] not in paths and orchids[1] in paths  # excluded; deferred stays put
    assert finding(doc, "lookalike_class")["id"] in {d.finding for d in decisions}


def test_an_export_of_another_project_is_refused(story):
    s, store = story
    tasks = json.loads(export_review(store, f"Audit@{s.orchids}", format="label-studio").text)
    theirs = [{"id": 1, "project": 3, "data": {"image": "http://x/1.jpg"}, "annotations": []}]
    with pytest.raises(ForeignExport, match="another project"):
        import_review(json.dumps(theirs), format="label-studio")
    with pytest.raises(ForeignExport, match="projects 3, 7"):
        import_review(json.dumps([*annotated(tasks, {}, project=7), dict(tasks[0], project=3)]),
                      format="label-studio")  # fmt: skip
    with pytest.raises(ForeignExport, match=f"not of Audit@{s.round1}"):
        import_review(
            json.dumps(annotated(tasks, {})), format="label-studio", audit=f"Audit@{s.round1}"
        )
    with pytest.raises(ForeignExport, match="not a Label Studio JSON export"):
        import_review(json.dumps({"tasks": []}), format="label-studio")


def test_csv_round_trip(story):
    s, store = story
    doc = audit_doc(store, s.orchids)
    exported = export_review(store, f"Audit@{s.orchids}", format="csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert list(rows[0]) == ["file", "finding_id", "action", "to"]
    odd = next(r for r in rows if r["file"] == "/roses/odd_daisy.jpg")
    assert odd["to"] == "daisy" and odd["action"] == ""
    odd["action"] = "relabel"
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=["file", "finding_id", "action", "to"], lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    imported = import_review(out.getvalue(), format="csv")
    [d] = imported.decisions
    assert (d.finding, d.file, d.action, d.to) == (
        finding(doc, "label_issue", "roses")["id"],
        "/roses/odd_daisy.jpg",
        "relabel",
        "daisy",
    )
    assert imported.skipped == len(rows) - 1
    with pytest.raises(Exception, match="lacks finding_id"):
        import_review("file,action,to\n/x.jpg,accept,\n", format="csv")
    with pytest.raises(Exception, match="line 2: action 'zap'"):
        import_review("file,finding_id,action,to\n/x.jpg,abc,zap,\n", format="csv")
