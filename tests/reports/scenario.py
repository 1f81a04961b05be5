"""A real store for the report tests, built once per session: real JPEGs, real pipelines.

flower_photos gets two commits: tulips, daisy and roses (6 each); then ``orchids`` (six more
tulip photos) plus a class folder named like an HTML injection, with a commit description that
tries one too. A stand-in Audit stage (fake_audit.py) audits each commit; stand-in Train and
Convert stages write the model documents. Everything runs in the local engine, in process.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
EVIL_CLASS = "<img src=x onerror=alert(1)>"
EVIL_DESCRIPTION = 'add orchids <script>alert("description")</script>'


@dataclass(frozen=True)
class Scenario:
    root: Path
    base_commit: str
    orchids_commit: str
    first_audit: str
    audit_commit: str
    train_commit: str
    convert_commit: str


def _pfs(repo: str) -> dict:
    return {"pfs": {"repo": repo, "glob": "/"}}


def build_scenario(root: Path, flowers: Path, *, per_class: int = 6) -> Scenario:
    from pipelines.embedded.store import EmbeddedStore
    from pipelines.runner import Runner

    store = EmbeddedStore(root)
    try:
        store.create_repo("flower_photos", description="flower photos, one folder per class")
        with store.start_commit("flower_photos", description="five flowers, minus two") as w:
            for label in ("tulips", "daisy", "roses"):
                for p in sorted((flowers / label).glob("*.jpg"))[:per_class]:
                    w.put_file(f"/{label}/{p.name}", p)
        base = store.resolve("flower_photos@master").id
        py = sys.executable
        store.create_pipeline(
            {
                "pipeline": {"name": "Audit"},
                "description": "stand-in audit for report tests",
                "transform": {
                    "cmd": [
                        py,
                        str(HERE / "fake_audit.py"),
                        "--data",
                        "/pfs/flower_photos",
                        "--repo",
                        "flower_photos",
                        "--out",
                        "/pfs/out",
                    ]
                },
                "input": _pfs("flower_photos"),
            }
        )
        store.create_pipeline(
            {
                "pipeline": {"name": "Train"},
                "transform": {
                    "cmd": [
                        py,
                        str(HERE / "fake_model.py"),
                        "train",
                        "--data",
                        "/pfs/flower_photos",
                        "--out",
                        "/pfs/out",
                    ]
                },
                "input": _pfs("flower_photos"),
            }
        )
        store.create_pipeline(
            {
                "pipeline": {"name": "Convert"},
                "transform": {
                    "cmd": [
                        py,
                        str(HERE / "fake_model.py"),
                        "convert",
                        "--model",
                        "/pfs/Train",
                        "--out",
                        "/pfs/out",
                    ]
                },
                "input": _pfs("Train"),
            }
        )
        Runner(store).run_until_idle()
        first_audit = store.resolve("Audit@master").id
        with store.start_commit("flower_photos", description=EVIL_DESCRIPTION) as w:
            for p in sorted((flowers / "tulips").glob("*.jpg"))[per_class : 2 * per_class]:
                w.put_file(f"/orchids/{p.name}", p)
            for p in sorted((flowers / "daisy").glob("*.jpg"))[per_class : per_class + 2]:
                w.put_file(f"/{EVIL_CLASS}/{p.name}", p)
        orchids = store.resolve("flower_photos@master").id
        jobs = Runner(store).run_until_idle()
        failed = [j for j in jobs if j.state != "success"]
        assert not failed, f"scenario jobs failed: {[(j.pipeline, j.reason) for j in failed]}"
        return Scenario(
            root=root,
            base_commit=base,
            orchids_commit=orchids,
            first_audit=first_audit,
            audit_commit=store.resolve("Audit@master").id,
            train_commit=store.resolve("Train@master").id,
            convert_commit=store.resolve("Convert@master").id,
        )
    finally:
        store.close()
