"""`tulip export mobile`, `identify`, `mobile check` and `predict`: the real console script in a
subprocess, on a copy of a real store (``tests/mobile/release_store.py``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.mobile.apps import poets_checkout, snapshot
from tests.mobile.release_store import scenario

pytestmark = pytest.mark.slow

LABELS = ["daisy", "dandelion", "roses"]
ANDROID = Path("android/tflite/app/src/main/assets")
IOS = Path("ios/tflite/data")


@pytest.fixture(scope="module")
def world():
    return scenario()


@pytest.fixture(scope="module")
def root(world, tmp_path_factory) -> Path:
    """A private copy of the scenario's store: exports are recorded in it."""
    return world.copy_to(tmp_path_factory.mktemp("mobile-cli") / "store")


@pytest.fixture
def tulip(root, tmp_path):
    exe = shutil.which("tulip", path=str(Path(sys.executable).parent)) or "tulip"
    env = {k: v for k, v in os.environ.items() if k not in ("TULIP_ROOT", "TULIP_BACKEND")}
    env |= {"TULIP_NO_AUTORUN": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}

    def run(*args: str, store: bool = True, expect: int = 0) -> subprocess.CompletedProcess:
        argv = [exe, *(["--root", str(root)] if store else []), *args]
        proc = subprocess.run(
            argv, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
        )
        if proc.returncode != expect:
            raise AssertionError(
                f"tulip {' '.join(args)} exited {proc.returncode}, expected {expect}\n"
                f"stdout: {proc.stdout}\nstderr: {proc.stderr}"
            )
        return proc

    return run


@pytest.fixture
def checkout(tmp_path) -> Path:
    return poets_checkout(tmp_path / "tensorflow-for-poets-2")


def test_export_then_identify_round_trips(world, tulip, checkout):
    doc = json.loads(
        tulip(
            "export", "mobile", f"Convert@{world.good}", "--android", str(checkout),
            "--ios", str(checkout), "--check", "-o", "json",
        ).stdout
    )  # fmt: skip
    assert doc["model"] == {"repo": "Convert", "commit": world.good}
    assert doc["forced"] is False and doc["targets"] == ["android", "ios"]
    assert [p["platform"] for p in doc["device_check"]["platforms"]] == ["android", "ios"]
    for folder in (checkout / ANDROID, checkout / IOS):
        assert (folder / "labels.txt").read_text() == "".join(f"{x}\n" for x in LABELS)
        assert "## Device check" in (folder / "model_card.md").read_text()
    graph = checkout / IOS / "graph.lite"
    ident = json.loads(tulip("identify", str(graph), "-o", "json").stdout)
    assert ident["verdict"] == "known" and ident["status"] == "intact"
    assert ident["published"]["commit"] == world.good
    assert ident["manifest"]["model"] == {"repo": "Convert", "commit": world.good}
    assert {d["repo"] for d in ident["manifest"]["data"]} == {"flower_photos", "label_reference"}
    assert ident["manifest"]["labels"] == LABELS
    assert doc["id"] in [e["id"] for e in ident["exports"]]
    people = tulip("identify", str(graph)).stdout
    assert "INTACT and KNOWN" in people and f"flower_photos@{world.good}" in people
    # Off the phone, with no store at all:
    offline = tulip("identify", str(graph), store=False).stdout
    assert "INTACT but UNKNOWN" in offline and "no store was checked" in offline


def test_a_blocked_model_is_refused_then_forced_and_the_override_is_in_the_lineage(
    world, tulip, checkout
):
    before = snapshot(checkout)
    refused = tulip(
        "export", "mobile", "Convert@master", "--android", str(checkout), "--ios", str(checkout),
        expect=3,
    )  # fmt: skip
    assert f"Convert@{world.orchids}" in refused.stderr
    assert "lookalike_class" in refused.stderr
    assert f"tulip export mobile Convert@{world.good}" in refused.stderr
    assert snapshot(checkout) == before
    usage = tulip("export", "mobile", "Convert@master", "--android", str(checkout), "--force",
                  expect=2)  # fmt: skip
    assert "--force needs --reason" in usage.stderr
    assert snapshot(checkout) == before

    forced = tulip(
        "export", "mobile", "Convert@master", "--android", str(checkout), "--force",
        "--reason", "hotfix: keep the last good model", "-o", "json",
    )  # fmt: skip
    doc = json.loads(forced.stdout)
    assert doc["forced"] is True and doc["reason"] == "hotfix: keep the last good model"
    assert "FORCED past the gate" in forced.stderr
    lineage = json.loads(
        tulip("lineage", f"Convert@{world.good}", "--downstream", "--no-files", "-o", "json").stdout
    )
    exports = {n["id"]: n for n in lineage["nodes"] if n["type"] == "export"}
    node = exports[f"export:{doc['id']}"]
    assert node["forced"] is True and node["reason"] == "hotfix: keep the last good model"
    table = tulip("lineage", f"Convert@{world.good}", "--downstream", "--no-files").stdout
    assert f"export:{doc['id']}" in table and "FORCED" in table


def test_identify_modified_truncated_and_foreign_files(world, tulip, checkout, tmp_path):
    tulip("export", "mobile", f"Convert@{world.good}", "--android", str(checkout))
    data = bytearray((checkout / ANDROID / "graph.lite").read_bytes())
    from mobile import tflite_file

    model = tflite_file.load_model(bytes(data))
    biggest = max(
        range(len(model.buffers)), key=lambda i: len(tflite_file.buffer_bytes(model, i, data))
    )
    at = bytes(data).find(tflite_file.buffer_bytes(model, biggest, bytes(data)))
    data[at + 3] ^= 0xFF
    tampered = tmp_path / "tampered.lite"
    tampered.write_bytes(bytes(data))
    proc = tulip("identify", str(tampered), expect=3)
    assert "MODIFIED since export" in proc.stdout and "weights were modified" in proc.stdout
    truncated = tmp_path / "truncated.lite"
    truncated.write_bytes(bytes(data[:5000]))
    assert "truncated" in tulip("identify", str(truncated), expect=2).stderr
    foreign = tmp_path / "page.lite"
    foreign.write_text("<html>not found</html>")
    assert "not a TensorFlow Lite model" in tulip("identify", str(foreign), expect=2).stderr


def test_mobile_check_reports_both_platforms(world, tulip):
    doc = json.loads(tulip("mobile", "check", f"Convert@{world.good}", "-o", "json").stdout)
    assert [p["platform"] for p in doc["platforms"]] == ["android", "ios"]
    assert doc["images"] > 0 and doc["labels"] == LABELS and doc["split"] == "test"
    for p in doc["platforms"]:
        assert p["latency_ms_median"] > 0 and 0 <= p["agreement"] <= 1
    people = tulip("mobile", "check", f"Convert@{world.good}").stdout
    assert "android" in people and "ios" in people and "LATENCY" in people
    # --strict exits 3 exactly when a platform is flagged
    strict = tulip(
        "mobile", "check", f"Convert@{world.good}", "--strict", "--max-changed", "0",
        expect=3 if any(p["changed"] for p in doc["platforms"]) else 0,
    )  # fmt: skip
    assert strict.returncode in (0, 3)


def test_predict_shows_what_the_apps_would(world, tulip, checkout):
    tulip("export", "mobile", f"Convert@{world.good}", "--ios", str(checkout))
    images = sorted((world.slice_dir / "flower_photos" / "daisy").glob("*.jpg"))[:2]
    graph = str(checkout / IOS / "graph.lite")
    android = json.loads(
        tulip("predict", graph, *map(str, images), "-o", "json", store=False).stdout
    )
    assert android["top_k"] == 3 and len(android["predictions"]) == 2
    for p in android["predictions"]:
        assert len(p["top"]) == 3 and {t["label"] for t in p["top"]} == set(LABELS)
    ios = json.loads(
        tulip("predict", graph, str(images[0]), "--platform", "ios", "-o", "json",
              store=False).stdout
    )  # fmt: skip
    assert all(t["probability"] >= 0.1 for t in ios["predictions"][0]["top"])
    table = tulip("predict", graph, str(images[0]), "-k", "1", store=False).stdout
    assert "RANK" in table and len(table.strip().splitlines()) == 2


def test_bad_input_is_exit_2_and_leaves_the_apps_untouched(world, tulip, checkout, tmp_path):
    before = snapshot(checkout)
    missing = tulip(
        "export", "mobile", f"Convert@{world.good}", "--android", str(tmp_path / "nowhere"),
        expect=2,
    )  # fmt: skip
    assert "no such folder" in missing.stderr
    not_model = tulip("export", "mobile", "flower_photos@master", "--ios", str(checkout), expect=2)
    assert "holds no /optimized_graph.lite" in not_model.stderr
    assert "give --android" in tulip("export", "mobile", "Convert@master", expect=2).stderr
    assert snapshot(checkout) == before
