"""The seed story for the review tests, on a real store with the real Audit stage.

Images are stand-ins: each file holds its embedding (64 float32s, Gaussian clusters from
``tests.auditor.synthetic``), so a stand-in Embed (one datum per image, batched, like the
real one) writes records without a backbone, and ``python -m auditor.stage`` runs every
real check on them. The reference gallery, which the stage embeds itself, is found in the
store's embedding cache (``training.embedding_cache``), filled here as an earlier
embedding would have. The records call the space ``colour_histogram`` (a real name, so its
policy applies; the vectors are the clusters'). Train and Convert are the short scripts of the lineage tests (Convert
refuses with "gate blocked: …" when the audit failed).

* round 1: daisy, dandelion, roses, sunflowers (24 each), two of them mislabelled (a daisy in
  /roses, a dandelion in /sunflowers): the audit warns with two label issues;
* round 2: /orchids, 24 pictures of tulips; the reference gallery has tulips: the audit
  fails (``lookalike_class`` orchids → tulips) and Convert is blocked.

The fix (a review) is the tests' to make.
"""

from __future__ import annotations

import hashlib
import json
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.embedded.store import EmbeddedStore
from pipelines.runner import Runner
from tests.auditor.lineage_history import CONVERT, TRAIN
from tests.auditor.synthetic import kind_means
from training.embedding_cache import EmbeddingCache, default_cache_dir

CLASSES = ("daisy", "dandelion", "roses", "sunflowers", "tulips")
PER_CLASS = 24
ARCH = "colour_histogram"
MISLABELLED = {"/roses/odd_daisy.jpg": 0, "/sunflowers/odd_dandelion.jpg": 1}

EMBED = """
import sys
import numpy as np
from pipelines.layout import label_of
from pipelines.records import EmbeddingRecord
from pipelines.worker import run_batched
from training.embed import write_record
import hashlib
ARCH = "colour_histogram"

def process(datums):
    for d in datums:
        for p in d.files():
            data = p.read_bytes()
            rel = d.relpath(p)
            write_record(EmbeddingRecord(rel, label_of(rel), hashlib.sha256(data).hexdigest(),
                         len(data), ARCH, embedding=np.frombuffer(data, dtype=np.float32)),
                         d.out)
        print(f"embedded {d.id}", file=sys.stderr)

run_batched(process, batch_size=64)
"""


def picture(kind: int, rng: np.random.Generator) -> bytes:
    """A stand-in image: its own embedding, a point of the kind's cluster."""
    return (kind_means()[kind] + rng.normal(size=64)).astype(np.float32).tobytes()


def cached(data: bytes) -> dict:
    """The embedding cache's entry for a stand-in image."""
    vec = np.frombuffer(data, dtype=np.float32)
    return {"status": "ok", "reason": None, "image": None, "embedding": [float(v) for v in vec]}


def embed_spec(script: Path) -> dict:
    return {
        "pipeline": {"name": "Embed"},
        "transform": {"cmd": [sys.executable, str(script)], "datumBatching": True},
        "input": {"pfs": {"repo": "flower_photos", "glob": "/*/*"}},
    }


def audit_spec() -> dict:
    return {
        "pipeline": {"name": "Audit"},
        "transform": {
            "cmd": [
                sys.executable,
                "-m",
                "auditor.stage",
                "--embeddings",
                "/pfs/Embed",
                "--data",
                "/pfs/flower_photos",
                "--reference",
                "/pfs/label_reference",
                "--out",
                "/pfs/out",
            ]
        },
        "input": {
            "cross": [
                {"pfs": {"repo": "Embed", "glob": "/"}},
                {"pfs": {"repo": "flower_photos", "glob": "/"}},
                {"pfs": {"repo": "label_reference", "glob": "/"}},
            ]
        },
    }


def script_spec(name: str, script: Path, inputs: list[str]) -> dict:
    return {
        "pipeline": {"name": name},
        "transform": {
            "cmd": [sys.executable, str(script), *[f"/pfs/{i}" for i in inputs], "/pfs/out"]
        },
        "input": {"cross": [{"pfs": {"repo": i, "glob": "/"}} for i in inputs]}
        if len(inputs) > 1
        else {"pfs": {"repo": inputs[0], "glob": "/"}},
    }


@dataclass(frozen=True)
class Story:
    root: Path
    reference: str
    round1: str
    orchids: str

    def open(self) -> EmbeddedStore:
        return EmbeddedStore(self.root, create=False)


def run(store: EmbeddedStore) -> None:
    Runner(store).run_until_idle()


def round1_files(seed: int = 0) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    files = {
        f"/{CLASSES[k]}/{CLASSES[k]}_{i:02d}.jpg": picture(k, rng)
        for k in range(4)
        for i in range(PER_CLASS)
    }
    files.update({p: picture(k, rng) for p, k in MISLABELLED.items()})
    return files


def orchid_files(seed: int = 2) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    return {f"/orchids/orchid_{i:02d}.jpg": picture(4, rng) for i in range(PER_CLASS)}


def build_story(root: Path, scripts: Path, *, pipelines: bool = True) -> Story:
    """The store at ``root`` after rounds 1 and 2, every job run (``TULIP_NO_AUTORUN`` set).
    Without ``pipelines``, only the data and the reference (for audits run by hand)."""
    scripts.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, code in (("embed", EMBED), ("train", TRAIN), ("convert", CONVERT)):
        paths[name] = scripts / f"{name}_stage.py"
        paths[name].write_text(textwrap.dedent(code))
    store = EmbeddedStore(root)
    try:
        store.create_repo("flower_photos")
        store.create_repo("label_reference")
        rng = np.random.default_rng(1)
        cache = EmbeddingCache(default_cache_dir(root))
        with store.start_commit("label_reference", description="gallery: five classes") as w:
            for k, cls in enumerate(CLASSES):
                for i in range(10):
                    data = picture(k, rng)
                    w.put_bytes(f"/{cls}/ref_{i}.jpg", data)
                    cache.put(ARCH, hashlib.sha256(data).hexdigest(), cached(data))
        reference = w.id
        with store.start_commit("flower_photos", description="round 1: four classes") as w:
            for p, data in round1_files().items():
                w.put_bytes(p, data)
        round1 = w.id
        if pipelines:
            for spec in (
                embed_spec(paths["embed"]),
                audit_spec(),
                script_spec("Train", paths["train"], ["flower_photos"]),
                script_spec("Convert", paths["convert"], ["Train", "Audit"]),
            ):
                store.create_pipeline(spec)
            run(store)
        with store.start_commit("flower_photos", description="add orchids") as w:
            for p, data in orchid_files().items():
                w.put_bytes(p, data)
        orchids = w.id
        run(store)
    finally:
        store.close()
    return Story(root, reference, round1, orchids)


def audit_doc(store: EmbeddedStore, commit: str) -> dict:
    return json.loads(store.get_file("Audit", commit, "/audit.json"))


def finding(doc: dict, check: str, *classes: str) -> dict:
    for f in doc["findings"]:
        if f["check"] == check and (not classes or tuple(f["classes"][: len(classes)]) == classes):
            return f
    raise AssertionError(
        f"no {check} {classes} among {[(f['check'], f['classes']) for f in doc['findings']]}"
    )


_BUILT: dict[str, Story] = {}


def _settle(root: Path) -> None:
    """Fold the built store's WAL into its database file, so the file alone is the store."""
    import sqlite3

    from pipelines.embedded.db import DB_NAME

    conn = sqlite3.connect(root / DB_NAME)
    try:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        conn.close()
    assert not busy, f"the story's store at {root} is still being written; cannot copy it"


def story_copy(tmp_path_factory, tmp_path: Path, *, pipelines: bool = True) -> Story:
    """A fresh copy of the story for one test (built once per session, then copied)."""
    import shutil

    import pytest

    key = "pipelines" if pipelines else "data"
    if key not in _BUILT:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("TULIP_NO_AUTORUN", "1")
            base = tmp_path_factory.mktemp(f"review-story-{key}")
            _BUILT[key] = build_story(base / "store", base / "scripts", pipelines=pipelines)
    built = _BUILT[key]
    _settle(built.root)
    # The WAL and its index are folded into the database by _settle; copying them as well
    # races with SQLite deleting them when a connection closes.
    shutil.copytree(built.root, tmp_path / "store", ignore=shutil.ignore_patterns("*-wal", "*-shm"))
    return Story(tmp_path / "store", built.reference, built.round1, built.orchids)
