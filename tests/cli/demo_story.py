"""What every `tulip demo` test asserts: the story's outcomes, not just the exit code. Pass (or
warn) then fail on the right class pair with the gate blocking, a signed alert received, blame
naming the commit that added /orchids, and an audit that lets the model through after the fix.

One demo per test file (test_demo*.py), so that pytest-xdist hands them to different workers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.shared import TENSORFLOW_NOISE


def run_demo(tmp_path: Path, env: dict, *args: str) -> tuple[dict, str]:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tulip.cli.main",
            "demo",
            "--workdir",
            str(tmp_path / "demo"),
            "-o",
            "json",
            *args,
        ],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=1100,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, f"demo exited {proc.returncode}\nstderr:\n{proc.stderr[-4000:]}"
    return json.loads(proc.stdout), proc.stderr


def quiet_tensorflow(stderr: str, store: str) -> None:
    """Neither the terminal nor a stage's log shows TensorFlow's native start-up lines."""
    from pipelines.embedded.store import EmbeddedStore

    assert [w for w in TENSORFLOW_NOISE if w in stderr] == []
    s = EmbeddedStore(store, create=False)
    try:
        logs = {p: s.logs(p) for p in ("Embed", "Train", "Audit", "Convert")}
        assert "Train done:" in logs["Train"]  # the stage's own line is there, the noise is not
        for pipeline, log in logs.items():
            assert [w for w in TENSORFLOW_NOISE if w in log] == [], pipeline
    finally:
        s.close()


def images_in(store: str, *commits: str) -> list[int]:
    """How many files each data commit holds where Embed's glob (``/*/*``) sees images."""
    from pipelines.embedded.store import EmbeddedStore

    s = EmbeddedStore(store, create=False)
    try:
        return [
            sum(1 for f in s.walk_files("flower_photos", c) if f.path.count("/") == 2)
            for c in commits
        ]
    finally:
        s.close()


def assert_story(
    result: dict, workdir: Path, *, ios_runs_it: bool = True, ends_in_pass: bool = False
) -> None:
    r1, r2, fix = result["rounds"]
    exported = [r for r in result["rounds"] if r["exported"]]
    if ios_runs_it:
        assert [r["ios_refused"] for r in result["rounds"]] == [None, None, None]
    else:  # the iOS app's TF Lite 1.13.1 cannot load it: said for every export, nothing written
        assert exported and all("1.13.1" in (r["ios_refused"] or "") for r in exported)
    # Round 1: the four real classes pass the gate, and the apps get a model.
    assert r1["verdict"] in ("pass", "warn")
    assert r1["gate"] == "open" and r1["exported"]
    assert not [f for f in r1["findings"] if f["severity"] == "fail"]
    # Round 2: orchids that are tulips fail as a lookalike of the reference's tulips.
    assert r2["verdict"] == "fail"
    lookalikes = [f for f in r2["findings"] if f["check"] == "lookalike_class"]
    assert lookalikes and lookalikes[0]["classes"] == ["orchids", "tulips"]
    assert r2["gate"].startswith("blocked") and "gate blocked" in r2["gate"]
    assert r2["exported"] is None and result["apps_kept_round1_model"] is True
    # Only the new folder is embedded again: one datum per added image, every other skipped.
    before, after = images_in(result["store"], r1["data_commit"], r2["data_commit"])
    assert after > before > 0
    assert r2["embed_processed"] == after - before
    assert r2["embed_skipped"] == before
    # The alert came through, signed.
    assert result["alert"]["signature_valid"] is True
    event = result["alert"]["event"]
    assert event["type"] == "dev.tulip.audit.failed"
    assert event["subject"] == f"flower_photos@{r2['data_commit']}"
    # Blame names the commit that added /orchids, and its files.
    blamed = result["blame"]["commits"]
    orchid_commit = next(c for c in blamed if any(f.startswith("/orchids/") for f in c["files"]))
    assert (
        orchid_commit["id"] == r2["data_commit"] and orchid_commit["description"] == "add orchids"
    )
    # Round 3, the review: one fix commit from `tulip review apply` on round 2's audit (rename
    # orchids -> tulips, a decision on each single image it raised); the gate opens, and blame
    # of the new model shows the fix.
    assert fix["name"] == "review"
    assert fix["verdict"] in ("pass", "warn") and fix["gate"] == "open" and fix["exported"]
    if ends_in_pass:  # what the re-audit still raised, a second look accepts: then it passes
        assert (fix["reviewed_verdict"] or fix["verdict"]) == "pass", fix["findings"]
        assert (fix["reviewed_verdict"] is None) == (fix["verdict"] == "pass")
    assert not [f for f in fix["findings"] if f["severity"] == "fail"]
    decisions = json.loads((workdir / "review-decisions.json").read_text())
    assert {"action": "rename", "to": "tulips"}.items() <= decisions[0].items()
    fixes = result["fix_blame"]["fixes"]
    assert fixes and fixes[0]["commit"]["id"] == fix["data_commit"]
    assert fixes[0]["audit"] == f"Audit@{r2['audit_commit']}"
    assert "fixed by review" in result["fix_blame"]["summary"]
    ident = result["identify"]
    assert ident["status"] == "intact" and ident["verdict"] == "known"
    assert fix["data_commit"] in json.dumps(ident)
    assets = workdir / "android" / "tflite" / "app" / "src" / "main" / "assets"
    labels = (assets / "labels.txt").read_text().split()
    assert labels == ["daisy", "dandelion", "roses", "sunflowers", "tulips"]
    ios_graph = workdir / "ios" / "tflite" / "data" / "graph.lite"
    if ios_runs_it:
        assert ios_graph.read_bytes() == (assets / "graph.lite").read_bytes()
    else:
        assert not ios_graph.exists()
