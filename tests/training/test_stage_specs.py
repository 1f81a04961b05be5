"""The Embed, Train, Tensorboard and Convert specs are valid Pachyderm specs, shaped as the seed."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from tests.shared import shared_dir

SPECS = Path(__file__).resolve().parents[2] / "pipelines"


def _spec(name: str) -> dict:
    return json.loads((SPECS / f"{name}.json").read_text())


@pytest.mark.parametrize("name", ["embed", "train", "tensorboard", "convert"])
def test_spec_validates_against_pachyderms_schema(name):
    schema = json.loads(
        (shared_dir() / "pachyderm" / "CreatePipelineRequest.schema.json").read_text()
    )
    spec = _spec(name)
    jsonschema.validate(spec, schema)
    assert spec["pipeline"]["name"] == name.capitalize()
    assert spec["transform"]["image"] == "tulip/tulip:0.1.0"


def test_embed_is_one_datum_per_image_with_batching():
    s = _spec("embed")
    assert s["input"]["pfs"] == {"repo": "flower_photos", "glob": "/*/*"}
    assert s["transform"]["datumBatching"] is True
    assert s["parallelismSpec"] == {"constant": 2}  # two workers share the images
    assert s["transform"]["cmd"] == ["python3", "-m", "training.embed"]
    assert s["transform"]["env"]["ARCHITECTURE"] == "mobilenet_1.0_224"


def test_train_crosses_embeddings_and_images():
    s = _spec("train")
    assert {i["pfs"]["repo"]: i["pfs"]["glob"] for i in s["input"]["cross"]} == {
        "Embed": "/",
        "flower_photos": "/",
    }
    cmd = " ".join(s["transform"]["cmd"])
    assert "-m training.train" in cmd and "/pfs/Embed" in cmd and "/pfs/out" in cmd
    assert "--architecture" not in cmd  # one place: env ARCHITECTURE
    assert s["transform"]["env"]["ARCHITECTURE"] == "mobilenet_1.0_224"


def test_tensorboard_is_a_service_on_train():
    s = _spec("tensorboard")
    assert s["service"] == {"internalPort": 6006, "externalPort": 30006}
    assert s["input"]["pfs"] == {"repo": "Train", "glob": "/"}
    assert "tensorboard --logdir /pfs/Train/training_summaries" in s["transform"]["stdin"][0]


def test_convert_reads_the_audit_verdict():
    s = _spec("convert")
    # A join, not a cross: with no audit verdict the job still runs, and the gate fails it.
    inputs = {i["pfs"]["repo"]: i["pfs"] for i in s["input"]["join"]}
    assert list(inputs) == ["Train", "Audit", "flower_photos"]
    assert [r for r, p in inputs.items() if not p.get("outerJoin")] == ["Audit"]
    assert {p["glob"] for p in inputs.values()} == {"/"}
    cmd = s["transform"]["cmd"]
    assert cmd[:3] == ["python3", "-m", "conversion.convert"]
    assert cmd[cmd.index("--audit") + 1] == "/pfs/Audit"


def test_audit_runs_without_a_reference_gallery():
    s = _spec("audit")
    inputs = {i["pfs"]["repo"]: i["pfs"] for i in s["input"]["join"]}
    assert list(inputs) == ["Embed", "flower_photos", "label_reference"]
    assert [r for r, p in inputs.items() if p.get("outerJoin")] == ["Embed", "flower_photos"]
    assert len({p["joinOn"] for p in inputs.values()}) == 1  # one key: one datum of all three
