"""Runtime floors: a float16 model needs TensorFlow Lite 1.15 (DEQUANTIZE v3), which the
tensorflow-for-poets-2 iOS app (TensorFlowLite <= 1.13.1) cannot load; export picks the
float32 variant there, or refuses naming both versions. Real converter output, tiny models."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from mobile import release
from mobile.errors import InvalidRuntimeVersion, RuntimeTooOld
from mobile.identify import identify_file
from mobile.runtime import (
    DEFAULT_RUNTIMES,
    LATEST,
    choose_for_runtimes,
    parse_version,
    required_runtime,
    runs_on,
)
from mobile.source import ModelSource
from pipelines.layout import CONVERSION_FILE, TFLITE_FILE, VARIANTS_DIR


@pytest.fixture(scope="module")
def models() -> dict[str, bytes]:
    """One tiny classifier (8x8 RGB in, 3 scores out) converted as Convert converts it."""
    import keras

    from conversion.variants import convert_with_report

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(4, 3),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    return {v: convert_with_report(model, v).blob for v in ("float32", "float16")}


def test_the_converter_records_what_float16_weights_need(models):
    f16, f32 = required_runtime(models["float16"]), required_runtime(models["float32"])
    assert parse_version(f16) >= (1, 15, 0), f16  # DEQUANTIZE v3 for float16 weights
    assert parse_version(f32) <= parse_version(DEFAULT_RUNTIMES["ios"]), f32
    assert not runs_on(f16, DEFAULT_RUNTIMES["ios"]) and runs_on(f16, LATEST)


def test_a_float16_model_is_refused_for_a_1_13_ios_app(models):
    with pytest.raises(RuntimeTooOld) as e:
        choose_for_runtimes(
            models["float16"], {"ios": "1.13.1"}, variants={}, published_variant="float16"
        )
    message = str(e.value)
    assert "1.15" in message and "ios" in message and "1.13.1" in message
    assert "--ios-runtime" in message and "float32" in message


def test_the_float32_variant_is_picked_for_the_old_runtime(models):
    choice = choose_for_runtimes(
        models["float16"],
        {"android": LATEST, "ios": "1.13.1"},
        variants={"float32": models["float32"], "float16": models["float16"]},
        published_variant="float16",
    )
    assert choice.variant == "float32" and choice.content == models["float32"]
    assert choice.as_dict()["published_min_runtime_version"] == required_runtime(models["float16"])
    # a current runtime everywhere: the published model goes as it is
    kept = choose_for_runtimes(models["float16"], {"android": LATEST, "ios": "2.16.1"})
    assert kept.variant is None and kept.content == models["float16"]


def test_a_runtime_that_is_not_a_version_is_refused(models):
    with pytest.raises(InvalidRuntimeVersion, match="--ios-runtime 'v1'"):
        choose_for_runtimes(models["float32"], {"ios": "v1"})


def _convert_commit(store, models, *, keep: dict[str, bytes], agreement: float = 1.0):
    report = {
        "policy": {"min_agreement": 0.97},
        "published": {"variant": "float16"},
        "variants": {
            v: {"sha256": hashlib.sha256(b).hexdigest(), "agreement": agreement}
            for v, b in models.items()
        },
    }
    store.create_repo("Convert")
    with store.start_commit("Convert") as w:
        w.put_bytes(TFLITE_FILE, models["float16"])
        w.put_bytes(CONVERSION_FILE, __import__("json").dumps(report).encode())
        for v, b in keep.items():
            w.put_bytes(f"{VARIANTS_DIR}/{v}.tflite", b)
    c = store.resolve("Convert@master")
    return ModelSource(
        requested=c,
        commit=c,
        content=models["float16"],
        labels=("a", "b", "c"),
        labels_source="test",
        data=(),
        audit=None,
        audit_problem=None,
        train=None,
        blocked_audit=None,
        metrics=None,
        conversion=report,
    )


def test_export_takes_the_float32_variant_convert_kept(store, models):
    source = _convert_commit(store, models, keep={"float32": models["float32"]})
    choice = release.choose_runtime(store, source, dict(DEFAULT_RUNTIMES))
    assert choice.variant == "float32" and choice.content == models["float32"]
    assert choice.targets == {"android": LATEST, "ios": "1.13.1"}
    assert release.choose_runtime(store, source, {"android": LATEST}).variant is None


def test_a_kept_variant_convert_found_disagreeing_is_not_shipped(store, models):
    source = _convert_commit(store, models, keep={"float32": models["float32"]}, agreement=0.5)
    with pytest.raises(RuntimeTooOld, match="kept no other variant"):
        release.choose_runtime(store, source, {"ios": "1.13.1"})


def test_identify_names_the_runtime_a_file_needs(models, tmp_path):
    path = tmp_path / "graph.lite"
    path.write_bytes(models["float16"])
    result = identify_file(path)
    assert result.as_dict()["min_runtime_version"] == required_runtime(models["float16"])
    assert f"needs TensorFlow Lite {required_runtime(models['float16'])}" in result.summary()


def test_parse_version_pads_and_refuses():
    assert parse_version("1.13") == (1, 13, 0) and parse_version("2.16.1") == (2, 16, 1)
    assert np.all([runs_on(None, "1.0"), runs_on("1.6.0", "1.13.1")])
    with pytest.raises(InvalidRuntimeVersion):
        parse_version("latest-ish")
