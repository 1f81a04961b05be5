"""A small real history for the lineage and blame tests: the seed story in miniature.

A real ``EmbeddedStore`` and the real local engine run three tiny pipelines whose transforms
are short Python scripts (no TensorFlow):

* ``Train`` (flower_photos) writes ``model.keras``: the sorted list of its input files.
* ``Audit`` (flower_photos × label_reference) writes ``/audit.json``: ``fail`` with a
  ``class_overlap`` finding on every ``/orchids`` file while both ``orchids`` and ``tulips``
  exist, else ``pass``. Its ``introduced_by`` is left empty, as an older tool would, unless
  the data holds ``/AUDIT_FILLS_INTRODUCED_BY``.
* ``Convert`` (Train × Audit) writes ``optimized_graph.lite``, or fails with "gate blocked: …"
  as its last stderr line when the audit failed, like ``conversion.convert``.

History, oldest first: ``ref0`` (label_reference), then in flower_photos ``initial`` (daisy,
tulips), ``roses`` (+2 roses), ``orchids`` (+3 orchids: the audit fails, Convert is blocked),
``cleanup`` (orchids deleted, a daisy changed), and last ``ref1`` (label_reference again, so
Audit and Convert rerun with flower_photos and Train under their older IDs).
"""

from __future__ import annotations

import json
import os
import textwrap
from dataclasses import dataclass
from pathlib import Path

from pipelines.embedded.store import EmbeddedStore
from pipelines.runner import Runner

TRAIN = """
import hashlib, os, sys
src, out = sys.argv[1], sys.argv[-1]
lines = []
for d, _, files in sorted(os.walk(src)):
    for f in sorted(files):
        p = os.path.join(d, f)
        lines.append(os.path.relpath(p, src) + " " + hashlib.sha256(open(p, "rb").read()).hexdigest())
open(os.path.join(out, "model.keras"), "w").write("\\n".join(sorted(lines)) + "\\n")
classes = sorted(x for x in os.listdir(src) if os.path.isdir(os.path.join(src, x)))
open(os.path.join(out, "retrained_labels.txt"), "w").write("\\n".join(classes) + "\\n")
"""

AUDIT = """
import json, os, sys
src, out = sys.argv[1], sys.argv[-1]
commit = os.environ.get("flower_photos_COMMIT")
classes = sorted(x for x in os.listdir(src) if os.path.isdir(os.path.join(src, x)))
findings = []
fill = os.path.exists(os.path.join(src, "AUDIT_FILLS_INTRODUCED_BY"))
if "orchids" in classes and "tulips" in classes:
    files = sorted("/orchids/" + f for f in os.listdir(os.path.join(src, "orchids")))
    findings.append({
        "check": "class_overlap", "severity": "fail", "classes": ["orchids", "tulips"],
        "score": 0.97, "files": files,
        "introduced_by": [{"repo": "flower_photos", "commit": commit}] if fill else [],
        "message": "orchids looks like tulips",
    })
doc = {
    "schema": "tulip.audit/v1",
    "verdict": "fail" if findings else "pass",
    "data": {"repo": "flower_photos", "branch": "master", "commit": commit},
    "reference": {"repo": "label_reference", "commit": os.environ.get("label_reference_COMMIT")},
    "summary": {"images": 0, "classes": {c: len(os.listdir(os.path.join(src, c))) for c in classes}},
    "findings": findings,
}
open(os.path.join(out, "audit.json"), "w").write(json.dumps(doc, indent=2))
"""

CONVERT = """
import json, os, sys
model, audit, out = sys.argv[1], sys.argv[2], sys.argv[3]
doc = json.load(open(os.path.join(audit, "audit.json")))
if doc["verdict"] == "fail":
    names = sorted({f["check"] for f in doc["findings"]})
    print(f"gate blocked: audit {doc['data']['commit']} failed: {len(doc['findings'])} findings "
          f"({', '.join(names)})", file=sys.stderr)
    sys.exit(1)
data = open(os.path.join(model, "model.keras"), "rb").read()
open(os.path.join(out, "optimized_graph.lite"), "wb").write(b"TFL3" + data)
"""


@dataclass(frozen=True)
class History:
    root: Path
    ref0: str
    initial: str
    roses: str
    orchids: str
    cleanup: str
    ref1: str

    def open(self) -> EmbeddedStore:
        return EmbeddedStore(self.root, create=False)


def _spec(name: str, script: Path, inputs: list[str]) -> dict:
    args = [f"/pfs/{i}" for i in inputs]
    node = (
        {"pfs": {"repo": inputs[0], "glob": "/"}}
        if len(inputs) == 1
        else {"cross": [{"pfs": {"repo": i, "glob": "/"}} for i in inputs]}
    )
    return {
        "pipeline": {"name": name},
        "description": f"test stage {name}",
        "transform": {"image": "tulip/test", "cmd": ["python3", str(script), *args, "/pfs/out"]},
        "input": node,
    }


def _commit(store: EmbeddedStore, repo: str, description: str, puts: dict, deletes=()) -> str:
    with store.start_commit(repo, "master", description=description) as w:
        for path in deletes:
            w.delete(path)
        for path, data in puts.items():
            w.put_bytes(path, data)
    Runner(store).run_until_idle()
    return w.id


def jpeg(label: str, n: int) -> bytes:
    return f"fake jpeg of {label} #{n}".encode()


def build_history(root: Path, scripts: Path) -> History:
    """Create the store at ``root`` (``TULIP_NO_AUTORUN`` must be set) and run every job."""
    assert os.environ.get("TULIP_NO_AUTORUN"), "set TULIP_NO_AUTORUN so the test runs the jobs"
    scripts.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, code in (("train", TRAIN), ("audit", AUDIT), ("convert", CONVERT)):
        paths[name] = scripts / f"{name}_stage.py"
        paths[name].write_text(textwrap.dedent(code))
    store = EmbeddedStore(root)
    try:
        store.create_repo("flower_photos", description="photos, one folder per class")
        store.create_repo("label_reference", description="reference gallery")
        ref0 = _commit(store, "label_reference", "gallery", {"/tulips/r1.jpg": jpeg("ref", 1)})
        for spec in (
            _spec("Train", paths["train"], ["flower_photos"]),
            _spec("Audit", paths["audit"], ["flower_photos", "label_reference"]),
            _spec("Convert", paths["convert"], ["Train", "Audit"]),
        ):
            store.create_pipeline(spec)
            Runner(store).run_until_idle()
        initial = _commit(
            store,
            "flower_photos",
            "initial",
            {f"/{c}/{i}.jpg": jpeg(c, i) for c in ("daisy", "tulips") for i in (1, 2, 3)},
        )
        roses = _commit(
            store,
            "flower_photos",
            "add roses",
            {f"/roses/{i}.jpg": jpeg("roses", i) for i in (1, 2)},
        )
        orchids = _commit(
            store,
            "flower_photos",
            "add orchids",
            {f"/orchids/{i}.jpg": jpeg("tulips", 10 + i) for i in (1, 2, 3)},
        )
        cleanup = _commit(
            store,
            "flower_photos",
            "remove orchids, retake daisy 1",
            {"/daisy/1.jpg": jpeg("daisy", 100)},
            deletes=["/orchids"],
        )
        ref1 = _commit(store, "label_reference", "more gallery", {"/roses/r1.jpg": jpeg("ref", 2)})
    finally:
        store.close()
    return History(root, ref0, initial, roses, orchids, cleanup, ref1)


def audit_json(store: EmbeddedStore, commit: str) -> dict:
    return json.loads(store.get_file("Audit", commit, "/audit.json"))


_BUILT: dict[str, History] = {}


def shared_history(tmp_path_factory) -> History:
    """The history, built once per test session and shared (read-only) by every test module."""
    import pytest

    if "history" not in _BUILT:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("TULIP_NO_AUTORUN", "1")
            base = tmp_path_factory.mktemp("lineage-history")
            _BUILT["history"] = build_history(base / "store", base / "scripts")
    return _BUILT["history"]
