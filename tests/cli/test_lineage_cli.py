"""`tulip lineage` and `tulip blame`: the real console script in a subprocess, on a real store."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.auditor.lineage_history import shared_history


@pytest.fixture(scope="session")
def history(tmp_path_factory):
    return shared_history(tmp_path_factory)


@pytest.fixture
def tulip(history, tmp_path):
    exe = shutil.which("tulip", path=str(Path(sys.executable).parent)) or "tulip"

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [exe, "--root", str(history.root), *args],
            capture_output=True,
            text=True,
            env={**os.environ, "TULIP_NO_AUTORUN": "1"},
            cwd=tmp_path,
            timeout=120,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"tulip {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
        return proc

    return run


def test_blame_answers_the_seed_question_in_one_line(history, tulip):
    proc = tulip("blame", f"Convert@{history.orchids}")
    first = proc.stdout.splitlines()[0]
    assert first.startswith(
        f"Convert@{history.orchids} was built from flower_photos@{history.orchids}"
    )
    assert "the gate blocked it" in first and "class_overlap orchids↔tulips" in first
    assert f"introduced by flower_photos@{history.orchids}" in first
    assert "'add orchids'): /orchids/ (3 files)" in first
    assert "/orchids/2.jpg" in proc.stdout
    doc = json.loads(tulip("blame", f"Train@{history.orchids}", "-o", "json").stdout)
    assert doc["schema"] == "tulip.blame/v1" and doc["verdict"] == "fail"
    assert [(c["id"], c["files"]) for c in doc["commits"]] == [
        (history.orchids, ["/orchids/1.jpg", "/orchids/2.jpg", "/orchids/3.jpg"])
    ]


def test_lineage_json_is_node_link_around_the_commit(history, tulip):
    doc = json.loads(tulip("lineage", "Convert@master", "-o", "json").stdout)
    ids = {n["id"] for n in doc["nodes"]}
    assert doc["graph"]["center"] == f"commit:Convert@{history.ref1}"
    assert f"commit:flower_photos@{history.cleanup}" in ids
    assert f"model:Train@{history.cleanup}" in ids
    assert not any(i.startswith("commit:flower_photos@" + history.orchids) for i in ids)
    assert any(i.startswith("file:flower_photos:/roses/1.jpg@") for i in ids)
    assert {(link["source"], link["kind"]) for link in doc["links"]} >= {
        (f"commit:Train@{history.cleanup}", "provenance")
    }
    no_files = json.loads(tulip("lineage", "Convert@master", "--no-files", "-o", "json").stdout)
    assert not any(n["type"] == "file" for n in no_files["nodes"])
    down = json.loads(
        tulip("lineage", f"flower_photos@{history.orchids}", "--downstream", "-o", "json").stdout
    )
    assert {n["id"] for n in down["nodes"] if n["type"] in ("model", "audit")} == {
        f"model:Train@{history.orchids}",
        f"audit:Audit@{history.orchids}",
    }
    up = json.loads(tulip("lineage", "Train@master", "--upstream", "-o", "json").stdout)
    assert f"commit:Convert@{history.cleanup}" not in {n["id"] for n in up["nodes"]}


def test_lineage_table_dot_and_file_refs(history, tulip):
    table = tulip("lineage", f"Convert@{history.orchids}").stdout
    for heading in ("COMMITS", "JOBS", "PIPELINES", "FILES", "MODELS", "AUDITS"):
        assert heading in table
    assert f"* commit:Convert@{history.orchids}" in table
    dot = tulip("lineage", "Convert@master", "--upstream", "-o", "dot").stdout
    assert dot.startswith('digraph "lineage" {') and dot.rstrip().endswith("}")
    assert "provenance" in dot
    f = json.loads(
        tulip("lineage", "flower_photos@master:/roses/1.jpg", "--downstream", "-o", "json").stdout
    )
    assert f["graph"]["center"].startswith("file:flower_photos:/roses/1.jpg@")
    assert f"model:Convert@{history.ref1}" in {n["id"] for n in f["nodes"]}


def test_lineage_diff_between_two_models(history, tulip):
    doc = json.loads(
        tulip(
            "lineage", f"Train@{history.roses}", "--diff", f"Train@{history.orchids}", "-o", "json"
        ).stdout
    )
    assert doc["classes_added"] == ["flower_photos:orchids"]
    assert [c["id"] for c in doc["commits"]] == [history.orchids]
    text = tulip("lineage", f"Train@{history.orchids}", "--diff", f"Train@{history.cleanup}").stdout
    assert "classes removed: flower_photos:orchids" in text
    assert "- flower_photos:/orchids/1.jpg" in text and "~ flower_photos:/daisy/1.jpg" in text


def test_lineage_writes_openlineage_events(history, tulip, tmp_path):
    out = tmp_path / "ol" / "events.jsonl"
    proc = tulip("lineage", f"Convert@{history.orchids}", "--upstream", "--openlineage", str(out))
    assert "OpenLineage events" in proc.stderr and proc.stdout == ""
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert {e["job"]["name"] for e in events} == {"Train", "Audit", "Convert"}
    assert {e["eventType"] for e in events if e["job"]["name"] == "Convert"} == {"START", "FAIL"}
    whole = tmp_path / "all.jsonl"
    tulip("lineage", "--openlineage", str(whole), "--namespace", "tulip://test")
    assert all(
        json.loads(x)["job"]["namespace"] == "tulip://test" for x in whole.read_text().splitlines()
    )


def test_lineage_errors_are_clear(history, tulip):
    proc = tulip("lineage", "nosuch@master", check=False)
    assert proc.returncode == 2 and "no repo 'nosuch'" in proc.stderr
    proc = tulip("lineage", "flower_photos@master:/roses", check=False)
    assert proc.returncode == 2 and "is a directory" in proc.stderr
    proc = tulip("lineage", "--diff", "Train@master", check=False)
    assert proc.returncode == 2 and "--diff needs REF" in proc.stderr
    proc = tulip("blame", "flower_photos@nosuchbranch", check=False)
    assert proc.returncode == 2 and "no branch 'nosuchbranch'" in proc.stderr


def test_lineage_and_blame_do_not_import_tensorflow(history):
    code = (
        "import sys\n"
        "from tulip.cli.main import main\n"
        "for argv in (['lineage', 'Convert@master', '-o', 'json'], ['blame', 'Convert@master']):\n"
        "    try:\n        main(['--root', sys.argv[1], *argv])\n    except SystemExit as e:\n"
        "        assert e.code == 0, e.code\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'sklearn', 'cleanlab') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(history.root)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
