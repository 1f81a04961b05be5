"""One real store, built once per test process, for the store-facing mobile tests.

The real Embed, Train, Audit and Convert specs of ``pipelines/`` run on the local engine
(``mobilenet_0.25_224``) over a slice of ``shared/data/flower_photos``:

1. ``good``: flower_photos holds daisy, dandelion and roses (20 photos each); label_reference
   holds other photos of those and of tulips. The audit passes (or warns), Convert publishes.
2. ``orchids``: a folder ``orchids`` of tulip photos is added. Tulips are in the reference,
   so the audit fails with ``lookalike_class``, the gate blocks Convert, and the Convert
   commit carries the last good model over with ``error`` set.

Both ``tests/mobile/test_release.py`` and ``tests/cli/test_mobile_cli.py`` call ``scenario()``,
which is cached, so the models are trained once per pytest process. Tests must treat the
store as read-only: copy it (``Scenario.copy_to``) before writing to it.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tests.shared import SESSION_TMP_ENV, built_once, shared_dir

ARCH = "mobilenet_0.25_224"
DATA_CLASSES = ("daisy", "dandelion", "roses")
PER_CLASS = 20  # 12 gives mobilenet_0.25 a false class_overlap dandelion/roses
REFERENCE_CLASSES = ("daisy", "dandelion", "roses", "tulips")
REFERENCE_PER_CLASS = 10
ORCHIDS = 12
SPECS = Path(__file__).resolve().parents[2] / "pipelines"


@dataclass(frozen=True)
class Scenario:
    root: Path  # the store
    slice_dir: Path  # the local copy of the photos put into the store
    good: str  # commit set of the first data commit: everything passes
    orchids: str  # commit set of the commit that adds /orchids (tulips): the gate blocks
    build_seconds: float
    report_line_kept: bool

    def open(self):
        from pipelines.embedded.store import EmbeddedStore

        return EmbeddedStore(self.root)

    def copy_to(self, dest: Path) -> Path:
        """A private copy of the store, for tests that write to it."""
        shutil.copytree(self.root, dest, ignore=shutil.ignore_patterns("*.lock", "logs"))
        return dest


def _photos(label: str) -> list[Path]:
    return sorted((shared_dir() / "data" / "flower_photos" / label).glob("*.jpg"))


def _copy(files: list[Path], dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copyfile(f, dest / f.name)


def standalone_report_has_cli() -> bool:
    """Whether ``python -m reports.standalone`` is a command yet (the Audit spec's 2nd line)."""
    proc = subprocess.run(
        [sys.executable, "-m", "reports.standalone", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.returncode == 0 and "usage" in (proc.stdout + proc.stderr).lower()


def pipeline_specs(*, keep_report: bool) -> list[dict]:
    specs = []
    for name in ("embed", "train", "audit", "convert"):
        spec = json.loads((SPECS / f"{name}.json").read_text())
        transform = spec["transform"]
        if name in ("embed", "train"):
            transform.setdefault("env", {})["ARCHITECTURE"] = ARCH
        if name == "audit" and not keep_report:
            transform["stdin"] = [
                line for line in transform["stdin"] if "reports.standalone" not in line
            ]
        specs.append(spec)
    return specs


REUSE_ENV = "TULIP_TEST_MOBILE_SCENARIO"


@cache
def scenario() -> Scenario:
    """The scenario, built once per test run, whatever the number of pytest-xdist workers.

    The workers of one run share a folder (``$TULIP_TEST_SESSION_TMP``, made and removed by
    tests/conftest.py): the first to need the scenario builds it there under a file lock, and
    the others wait for it and reuse it, instead of each training its own (5 minutes).
    For quick iterations, set ``$TULIP_TEST_MOBILE_SCENARIO`` to a folder: the first run
    builds the scenario there and keeps it, later runs reuse it (delete it to rebuild).
    """
    keep = os.environ.get(REUSE_ENV)
    if not keep and not os.environ.get(SESSION_TMP_ENV):
        return _scenario(None)
    with built_once("mobile-scenario", at=Path(keep) if keep else None) as folder:
        return _scenario(str(folder))


def _scenario(keep: str | None) -> Scenario:
    if keep and (Path(keep) / "scenario.json").is_file():
        saved = json.loads((Path(keep) / "scenario.json").read_text())
        return Scenario(
            **{**saved, "root": Path(saved["root"]), "slice_dir": Path(saved["slice_dir"])}
        )
    if keep:
        base = Path(keep)
        base.mkdir(parents=True, exist_ok=True)
    else:
        base = Path(tempfile.mkdtemp(prefix="tulip-mobile-release-"))
        atexit.register(shutil.rmtree, base, True)
    photos = base / "photos"
    for label in DATA_CLASSES:
        _copy(_photos(label)[:PER_CLASS], photos / "flower_photos" / label)
    for label in REFERENCE_CLASSES:
        _copy(
            _photos(label)[PER_CLASS : PER_CLASS + REFERENCE_PER_CLASS],
            photos / "label_reference" / label,
        )
    tulips = _photos("tulips")
    _copy(tulips[-ORCHIDS:], photos / "orchids")
    attribution = shared_dir() / "data" / "flower_photos" / "ATTRIBUTION.txt"
    if attribution.is_file():
        shutil.copyfile(attribution, photos / "ATTRIBUTION.txt")

    started = time.perf_counter()
    keep_report = standalone_report_has_cli()
    with no_autorun():
        good, orchids = _build(base / "store", photos, keep_report=keep_report)
    built = Scenario(
        root=base / "store",
        slice_dir=photos,
        good=good,
        orchids=orchids,
        build_seconds=time.perf_counter() - started,
        report_line_kept=keep_report,
    )
    if keep:
        saved = {**built.__dict__, "root": str(built.root), "slice_dir": str(built.slice_dir)}
        (base / "scenario.json").write_text(json.dumps(saved))
    return built


@contextlib.contextmanager
def no_autorun():
    """Jobs run only when a test calls ``Runner(store).run_until_idle()``."""
    before = os.environ.get("TULIP_NO_AUTORUN")
    os.environ["TULIP_NO_AUTORUN"] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TULIP_NO_AUTORUN", None)
        else:
            os.environ["TULIP_NO_AUTORUN"] = before


def _build(root: Path, photos: Path, *, keep_report: bool) -> tuple[str, str]:
    from pipelines.embedded.store import EmbeddedStore
    from pipelines.runner import Runner

    store = EmbeddedStore(root)
    try:
        store.create_repo("flower_photos")
        store.create_repo("label_reference")
        with store.start_commit("label_reference", description="reference gallery") as w:
            w.put_tree("/", photos / "label_reference")
        for spec in pipeline_specs(keep_report=keep_report):
            store.create_pipeline(spec)
        with store.start_commit("flower_photos", description="three flowers") as w:
            w.put_tree("/", photos / "flower_photos")
            good = w.id
        Runner(store).run_until_idle()
        with store.start_commit("flower_photos", description="add orchids") as w:
            w.put_tree("/orchids", photos / "orchids")
            orchids = w.id
        Runner(store).run_until_idle()
    finally:
        store.close()
    return good, orchids
