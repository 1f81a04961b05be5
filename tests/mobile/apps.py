"""App folders to export into: the parts of a tensorflow-for-poets-2 checkout that matter,
and a byte-exact snapshot to prove an export left them untouched."""

from __future__ import annotations

import os
from pathlib import Path

from mobile.export import ASSET_DIRS

OLD_MODEL = b"old graph.lite bytes"
OLD_LABELS = b"cats\ndogs\n"


def poets_checkout(root: Path, *, with_ios_data: bool = False) -> Path:
    """The bits of a tensorflow-for-poets-2 checkout that matter, with an older export."""
    app = root / "android/tflite/app"
    (app / "src/main/java").mkdir(parents=True)
    (app / "build.gradle").write_text("apply plugin: 'com.android.application'\n")
    assets = root / ASSET_DIRS["android"]
    assets.mkdir(parents=True)
    (assets / "graph.lite").write_bytes(OLD_MODEL)
    (assets / "labels.txt").write_bytes(OLD_LABELS)
    (assets / "BUILD").write_text("# keep me\n")
    (root / "ios/tflite").mkdir(parents=True)
    (root / "ios/tflite/CameraExampleViewController.mm").write_text("// app\n")
    if with_ios_data:
        (root / ASSET_DIRS["ios"]).mkdir()
    return root


def snapshot(root: Path) -> dict[str, object]:
    """Every path under root with its kind, bytes and mode: byte-identical means equal."""
    state: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            path = Path(dirpath, name)
            state[str(path.relative_to(root)) + "/"] = path.stat().st_mode
        for name in filenames:
            path = Path(dirpath, name)
            state[str(path.relative_to(root))] = (path.read_bytes(), path.stat().st_mode)
    return state
