"""Export into the tensorflow-for-poets-2 app folders: right places, atomic, or untouched."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from mobile import export as export_module
from mobile.errors import ExportTargetError, InvalidModelFile, LabelsMismatch
from mobile.export import ASSET_DIRS, export_assets, export_to_apps
from mobile.labels import format_labels, read_labels
from mobile.metadata import read_manifest, verify
from tests.mobile.apps import poets_checkout, snapshot


@pytest.fixture
def checkout(tmp_path) -> Path:
    return poets_checkout(tmp_path / "tensorflow-for-poets-2")


def test_export_lands_in_both_apps_and_identify_round_trips(checkout, stamped, flower_model):
    metrics = {
        "accuracy": 0.9,
        "test": {"per_class": {label: {"n": 20, "accuracy": 0.9} for label in flower_model.labels}},
    }
    when = dt.datetime(2024, 5, 2, 8, 30, tzinfo=dt.UTC)
    result = export_to_apps(
        stamped, android=checkout, ios=checkout, metrics=metrics, exported_at=when
    )
    android = checkout / "android/tflite/app/src/main/assets"
    ios = checkout / "ios/tflite/data"  # created inside the existing iOS app
    assert result.asset_dirs == {"android": android, "ios": ios}
    for folder in (android, ios):
        assert (folder / "graph.lite").read_bytes() == stamped.content
        assert read_labels(folder / "labels.txt") == list(flower_model.labels)
        card = json.loads((folder / "model_card.json").read_text())
        assert card["labels"] == list(flower_model.labels)
        assert card["exported_at"] == "2024-05-02T08:30:00Z"
        assert card["audit"]["verdict"] == "pass"
        assert "# Model card" in (folder / "model_card.md").read_text()
        manifest = read_manifest(folder / "graph.lite")
        assert manifest == stamped.manifest
        assert verify(folder / "graph.lite").ok
        leftovers = [p.name for p in folder.iterdir() if p.name.startswith(".")]
        assert leftovers == []
    assert (android / "BUILD").read_text() == "# keep me\n"  # other assets untouched
    exported = result.file("android", "graph.lite")
    assert exported.sha256 == stamped.sha256 and exported.size == len(stamped.content)
    assert result.exported_at == "2024-05-02T08:30:00Z"


def test_export_again_replaces_the_files(checkout, stamped):
    export_to_apps(stamped, android=checkout)
    first = snapshot(checkout)
    export_to_apps(stamped, android=checkout, exported_at=dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    second = snapshot(checkout)
    changed = {k for k in first if first[k] != second.get(k)}
    assert changed <= {
        "android/tflite/app/src/main/assets/model_card.json",
        "android/tflite/app/src/main/assets/model_card.md",
    }


def _refused(checkout: Path, error, match: str, **kwargs) -> None:
    before = snapshot(checkout)
    with pytest.raises(error, match=match):
        export_assets(**kwargs)
    assert snapshot(checkout) == before


def test_labels_that_do_not_match_the_outputs_leave_the_app_untouched(checkout, stamped):
    _refused(
        checkout,
        LabelsMismatch,
        "2 labels but the model has 3 outputs",
        model_bytes=stamped.content,
        labels=["daisy", "tulips"],
        android=checkout,
        ios=checkout,
    )
    _refused(
        checkout,
        LabelsMismatch,
        "differ from the ones embedded",
        model_bytes=stamped.content,
        labels=list(reversed(stamped.manifest.labels)),
        android=checkout,
    )


def test_truncated_or_foreign_model_leaves_the_app_untouched(checkout, stamped):
    labels = list(stamped.manifest.labels)
    _refused(
        checkout,
        InvalidModelFile,
        "truncated",
        model_bytes=stamped.content[:-100],
        labels=labels,
        android=checkout,
    )
    _refused(
        checkout,
        InvalidModelFile,
        "not a TensorFlow Lite model",
        model_bytes=b"<html>404</html>" * 4,
        labels=labels,
        android=checkout,
    )


def test_missing_and_wrong_roots_are_explained(tmp_path, checkout, stamped):
    labels = list(stamped.manifest.labels)
    with pytest.raises(ExportTargetError, match="no such folder"):
        export_assets(stamped.content, labels, android=tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()
    with pytest.raises(ExportTargetError, match="no app folder given"):
        export_assets(stamped.content, labels)
    empty = tmp_path / "empty"
    empty.mkdir()
    _refused(
        empty,
        ExportTargetError,
        "does not hold the android app",
        model_bytes=stamped.content,
        labels=labels,
        android=empty,
    )
    # Given the app folder itself instead of the checkout root: point at the root.
    _refused(
        checkout,
        ExportTargetError,
        f"pass {checkout.resolve()} instead",
        model_bytes=stamped.content,
        labels=labels,
        android=checkout / "android/tflite",
    )
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    with pytest.raises(ExportTargetError, match="is a file, not a folder"):
        export_assets(stamped.content, labels, ios=a_file)


def test_a_file_in_the_way_leaves_both_apps_untouched(checkout, stamped):
    """The iOS target is blocked; the Android one must not be written either."""
    (checkout / "ios/tflite/data").write_text("a file where the data folder should be")
    _refused(
        checkout,
        ExportTargetError,
        "is a file where the export needs a folder",
        model_bytes=stamped.content,
        labels=list(stamped.manifest.labels),
        android=checkout,
        ios=checkout,
    )


def test_a_folder_named_graph_lite_is_in_the_way(checkout, stamped):
    poets_ios = checkout / "ios/tflite/data"
    (poets_ios / "graph.lite").mkdir(parents=True)
    _refused(
        checkout,
        ExportTargetError,
        "is a folder where the export needs to write a file",
        model_bytes=stamped.content,
        labels=list(stamped.manifest.labels),
        android=checkout,
        ios=checkout,
    )


def _writable(folder: Path) -> bool:
    probe = folder / ".tulip-probe"
    try:
        probe.write_bytes(b"")
    except OSError:
        return False
    probe.unlink()
    return True


@contextlib.contextmanager
def read_only(folder: Path):
    """``folder`` made unwritable: chmod, or for root (which chmod does not stop) chattr +i."""
    folder.chmod(0o555)
    immutable = False
    try:
        if _writable(folder) and shutil.which("chattr"):
            immutable = (
                subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
            )
        if _writable(folder):
            pytest.skip(
                "running as root on a filesystem without chattr +i: no way to make a "
                "folder unwritable (the file-in-the-way tests cover refusal)"
            )
        yield folder
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)


def test_unwritable_ios_app_leaves_both_apps_untouched(checkout, stamped):
    """Android stages fine, then iOS cannot: the Android temporaries must go too."""
    with read_only(checkout / "ios/tflite"):
        _refused(
            checkout,
            ExportTargetError,
            "cannot write into",
            model_bytes=stamped.content,
            labels=list(stamped.manifest.labels),
            android=checkout,
            ios=checkout,
        )


def test_unwritable_assets_folder_leaves_the_app_untouched(checkout, stamped):
    with read_only(checkout / ASSET_DIRS["android"]):
        _refused(
            checkout,
            ExportTargetError,
            "cannot write into",
            model_bytes=stamped.content,
            labels=list(stamped.manifest.labels),
            android=checkout,
        )


def test_a_rename_failing_midway_puts_every_old_file_back(checkout, stamped, monkeypatch):
    """Staging succeeded; the third rename fails: the two already renamed are restored."""
    before = snapshot(checkout)
    real_replace = os.replace
    calls = {"n": 0}

    def flaky_replace(src, dst, *args, **kwargs):
        if ".tulip-" in str(src) and str(src).endswith(".tmp"):
            calls["n"] += 1
            if calls["n"] == 3:
                raise OSError(28, "No space left on device", str(dst))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(export_module.os, "replace", flaky_replace)
    with pytest.raises(ExportTargetError, match="restored as they were"):
        export_to_apps(stamped, android=checkout, ios=checkout)
    monkeypatch.undo()
    assert calls["n"] == 3
    assert snapshot(checkout) == before


def test_staging_failure_removes_temporaries_and_created_folders(checkout, stamped, monkeypatch):
    before = snapshot(checkout)
    real_stage = export_module._stage
    staged = []

    def stage_then_fail(directory, name, content):
        if len(staged) == 5:
            raise OSError(28, "No space left on device", str(directory / name))
        staged.append(real_stage(directory, name, content))
        return staged[-1]

    monkeypatch.setattr(export_module, "_stage", stage_then_fail)
    with pytest.raises(ExportTargetError, match="No space left on device"):
        export_to_apps(stamped, android=checkout, ios=checkout)
    assert len(staged) == 5 and not any(p.exists() for p in staged)
    assert snapshot(checkout) == before  # ios/tflite/data was created, then removed


def test_labels_file_matches_the_model_output_order(checkout, stamped):
    result = export_assets(stamped.content, stamped.manifest.labels, ios=checkout)
    labels_path = result.file("ios", "labels.txt").path
    assert labels_path.read_bytes() == format_labels(stamped.manifest.labels)
    assert labels_path.read_bytes().count(b"\n") == len(stamped.manifest.labels)


def test_a_model_with_integer_input_is_refused_for_the_float_apps(checkout, flower_model):
    """The poets apps write float32 pixels; a uint8-input variant would fail on the phone."""
    import flatbuffers

    from mobile import tflite_file
    from mobile.errors import UnsupportedModel

    model = tflite_file.load_model(flower_model.content)
    subgraph = model.subgraphs[0]
    subgraph.tensors[subgraph.inputs[0]].type = 3  # UINT8
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    _refused(
        checkout,
        UnsupportedModel,
        "takes uint8 input",
        model_bytes=bytes(builder.Output()),
        labels=list(flower_model.labels),
        android=checkout,
    )


def test_a_failed_or_missing_audit_is_refused_unless_overridden(checkout, stamped):
    from mobile.metadata import AuditRef
    from pipelines.errors import GateBlocked

    failed = dataclasses.replace(
        stamped,
        manifest=dataclasses.replace(stamped.manifest, audit=AuditRef("fail", "Audit", "b" * 32)),
    )
    unaudited = dataclasses.replace(
        stamped, manifest=dataclasses.replace(stamped.manifest, audit=None)
    )
    before = snapshot(checkout)
    with pytest.raises(GateBlocked, match="failed its audit"):
        export_to_apps(failed, android=checkout)
    with pytest.raises(GateBlocked, match="has no audit"):
        export_to_apps(unaudited, android=checkout)
    assert snapshot(checkout) == before
    forced = dataclasses.replace(
        failed, manifest=dataclasses.replace(failed.manifest, override_reason="hotfix demo")
    )
    export_to_apps(forced, android=checkout)
    card = json.loads((checkout / ASSET_DIRS["android"] / "model_card.json").read_text())
    assert card["override_reason"] == "hotfix demo" and card["audit"]["verdict"] == "fail"
