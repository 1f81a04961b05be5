"""Train -> Convert end to end on plain directories, with real TensorFlow and LiteRT."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conversion.convert import ConversionFailed, ConvertOptions, convert_stage
from tests.audits import FAILING, audit
from tests.training.flowers import dirty_slice, fresh_dir, trained_model
from training.backbones import normalize
from training.images import decode

pytestmark = [pytest.mark.slow, pytest.mark.cost(110)]


@pytest.fixture(scope="module")
def model_dir():
    return trained_model()


@pytest.fixture(scope="module")
def passing_audit():
    d = fresh_dir("audit-pass")
    (d / "audit.json").write_text(json.dumps(audit("warn", [{"check": "label_issue"}])))
    return d


@pytest.fixture(scope="module")
def converted(model_dir, passing_audit):
    out = fresh_dir("convert")
    report = convert_stage(
        model_dir,
        dirty_slice(),
        out,
        audit=passing_audit,
        options=ConvertOptions(keep_variants=True),
    )
    return out, report


def test_conversion_json_describes_every_variant(converted):
    out, report = converted
    on_disk = json.loads((out / "conversion.json").read_text())
    assert on_disk == json.loads(json.dumps(report))
    assert set(report["variants"]) == {"float32", "float16", "dynamic", "int8"}
    for name, v in report["variants"].items():
        assert v["size_bytes"] > 100_000, name
        assert 0 <= v["agreement"] <= 1 and 0 <= v["accuracy"] <= 1
        assert v["latency_ms"]["median"] > 0 and v["latency_ms"]["p90"] >= v["latency_ms"]["median"]
        assert v["input"] == {"dtype": "float32", "shape": [1, 224, 224, 3]}, name
        assert v["output"] == {"dtype": "float32"}
        assert v["images"] == report["evaluation"]["images"] > 0
    assert report["evaluation"]["split"] == "test"
    assert report["variants"]["float32"]["agreement"] == 1.0
    correction = report["variants"]["int8"]["bias_correction"]
    assert (
        correction["applied"] and correction["images"] == report["evaluation"]["calibration_images"]
    )
    for layer in report["variants"]["int8"]["float_layers"]:  # kept float: few, small
        assert layer["params"] < 0.02 * 220_000 and layer["error_in_steps"] > 1.0
    assert (
        report["variants"]["int8"]["size_bytes"] < 0.5 * report["variants"]["float32"]["size_bytes"]
    )
    assert report["labels"] == (out / "labels.txt").read_text().split()
    assert report["audit"]["verdict"] == "warn"


def test_published_model_is_the_chosen_variant_and_agrees_with_keras(converted, model_dir):
    import keras
    from ai_edge_litert.interpreter import Interpreter

    out, report = converted
    pub = report["published"]
    blob = (out / "optimized_graph.lite").read_bytes()
    assert pub["variant"] in ("int8", "dynamic", "float16", "float32")
    assert blob == (out / "variants" / f"{pub['variant']}.tflite").read_bytes()
    assert pub["agreement"] >= 0.97 and len(blob) == pub["size_bytes"]

    test_paths = [
        p
        for p, e in json.loads((model_dir / "splits.json").read_text())["files"].items()
        if e["split"] == "test"
    ]
    x = normalize(np.stack([decode(dirty_slice() / p.lstrip("/")) for p in test_paths]))
    keras_top1 = np.asarray(keras.models.load_model(model_dir / "model.keras")(x)).argmax(1)
    it = Interpreter(model_content=blob, num_threads=1)
    it.allocate_tensors()
    top1 = []
    for img in x:
        it.set_tensor(it.get_input_details()[0]["index"], img[None])
        it.invoke()
        top1.append(it.get_tensor(it.get_output_details()[0]["index"]).argmax())
    assert np.mean(np.array(top1) == keras_top1) >= 0.97


def test_under_threshold_publishes_nothing(model_dir):
    out = fresh_dir("convert-strict")
    with pytest.raises(ConversionFailed, match="under the threshold"):
        convert_stage(
            model_dir,
            dirty_slice(),
            out,
            options=ConvertOptions(variant="float32", variants=("float32",), min_agreement=1.01),
        )
    assert not (out / "optimized_graph.lite").exists()
    assert json.loads((out / "conversion.json").read_text())["published"] is None


def _run_stage(*args):
    return subprocess.run(
        [sys.executable, "-m", "conversion.convert", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_gate_refuses_a_failing_audit_and_writes_nothing(model_dir):
    audit_dir, out = fresh_dir("audit-fail"), fresh_dir("out")
    (audit_dir / "audit.json").write_text(json.dumps(audit("fail", FAILING, commit="64a918e3")))
    proc = _run_stage(
        "--model", model_dir, "--images", dirty_slice(), "--audit", audit_dir, "--out", out
    )
    assert proc.returncode == 3
    assert proc.stderr.strip().splitlines()[-1] == (
        "gate blocked: audit 64a918e3 failed: 3 findings (class_overlap, lookalike_class)"
    )
    assert list(out.iterdir()) == []


def test_gate_refuses_a_missing_audit(model_dir):
    audit_dir, out = fresh_dir("audit-none"), fresh_dir("out")
    proc = _run_stage(
        "--model", model_dir, "--images", dirty_slice(), "--audit", audit_dir, "--out", out
    )
    assert proc.returncode == 3
    assert proc.stderr.strip().splitlines()[-1] == f"gate blocked: no audit.json in {audit_dir}"
    assert list(out.iterdir()) == []
