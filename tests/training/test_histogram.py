"""The colour_histogram backbone: what it computes, and that it flows through Embed, Train and
Convert like a MobileNet (saved in model.keras, TFLite builtins only, TFLite agrees with Keras).

Real TensorFlow and LiteRT on a few generated flowers (tulip.synth); no weights are needed.
"""

from __future__ import annotations

import colorsys
import json
import os

import numpy as np
import pytest

from tests.training.flowers import fresh_dir, make_manifest, merge_outputs
from training.backbones import (
    KerasEmbedder,
    UnknownArchitecture,
    build_backbone,
    custom_objects,
    normalize,
    parse_architecture,
    valid_architectures,
)
from training.histogram import EDGE_OFFSET
from training.images import decode
from tulip.synth import DEFAULT_CLASSES, generate

ARCH = "colour_histogram"


@pytest.fixture(scope="module")
def flowers():
    """12 generated flowers per class, in the flower_photos layout."""
    root = fresh_dir("generated") / "flower_photos"
    generate(root, classes=DEFAULT_CLASSES, per_class=12, seed=3)
    (root / "ATTRIBUTION.txt").unlink()
    return root


@pytest.fixture(scope="module")
def pixels(flowers):
    paths = [sorted((flowers / c).glob("*.jpg"))[0] for c in DEFAULT_CLASSES]
    return np.stack([decode(p) for p in paths])


@pytest.fixture(scope="module")
def embedder():
    return KerasEmbedder(ARCH)


def test_it_is_an_architecture_that_needs_no_weights(tmp_path, monkeypatch):
    arch = parse_architecture(ARCH)
    assert (arch.needs_weights, arch.weights_filename, arch.input_shape) == (
        False,
        None,
        (224, 224, 3),
    )
    assert ARCH in valid_architectures()
    assert parse_architecture("mobilenet_0.25_224").needs_weights
    with pytest.raises(UnknownArchitecture, match="colour_histogram"):
        parse_architecture("colour_histogramme")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # an empty cache: nothing to find
    monkeypatch.setenv("TULIP_OFFLINE", "1")
    from tulip.demo_data import weights_available

    assert weights_available(ARCH)[0] is True
    assert build_backbone(ARCH).output_shape == (None, 1024)


def _reference_histogram(image: np.ndarray, *, bins: int = 8, pool: int = 2) -> np.ndarray:
    """Whole-image hue/saturation/value cell shares, in float64 with colorsys, one pixel at a
    time: the slow, obvious version of what the layer computes (cell edges moved by the same
    EDGE_OFFSET)."""
    x = image.astype(np.float64) / 255.0
    side = x.shape[0] // pool
    x = x.reshape(side, pool, side, pool, 3).mean(axis=(1, 3)).reshape(-1, 3)
    counts = np.zeros((bins, bins, bins))
    for r, g, b in x:
        h, s, v = colorsys.rgb_to_hsv(r, g, b)
        h, s, v = (min(int(c * bins + EDGE_OFFSET), bins - 1) for c in (h, s, v))
        counts[h, s, v] += 1
    return counts.reshape(-1) / len(x)


def test_whole_image_histogram_matches_a_per_pixel_hsv_reference(embedder, pixels):
    got = embedder.embed(pixels[:2])
    assert got.shape == (2, 1024) and got.dtype == np.float32
    for image, row in zip(pixels[:2], got, strict=True):
        whole, centre = row[:512] ** 4, row[512:] ** 4  # undo the 0.25 power
        assert whole.sum() == pytest.approx(1.0, abs=1e-4)
        assert centre.sum() == pytest.approx(1.0, abs=1e-4)
        # float64 may still put the odd pixel on the other side of an edge
        assert np.abs(whole - _reference_histogram(image)).sum() < 0.001


def test_embedding_is_deterministic_and_tells_images_apart(embedder, pixels):
    a, b = embedder.embed(pixels), embedder.embed(pixels[::-1].copy())
    np.testing.assert_array_equal(a, b[::-1])
    assert np.all(a >= 0)
    assert len({row.tobytes() for row in a}) == len(a)
    mirrored = embedder.embed(pixels[:, :, ::-1].copy())
    assert np.abs(mirrored**4 - a**4).sum(axis=1).max() < 1e-3  # colour, not layout
    assert embedder.name == ARCH and embedder.dim == 1024


def test_ios_and_android_normalisations_give_the_same_embedding(embedder, pixels):
    """iOS feeds (x - 127.5) / 127.5, Android (x - 128) / 128: half a grey level apart, which
    would move pixels across cell edges if the layer did not go back to 8-bit levels."""
    ios = np.asarray(embedder.model(normalize(pixels)))
    android = np.asarray(embedder.model((pixels.astype(np.float32) - 128.0) / 128.0))
    np.testing.assert_allclose(android, ios, atol=1e-6)


def _classifier():
    from training.head import Head, build_classifier

    rng = np.random.default_rng(0)
    head = Head(rng.normal(0, 1, (1024, 5)).astype(np.float32), np.zeros(5, np.float32), "test")
    return build_classifier(build_backbone(ARCH), head, labels=list(DEFAULT_CLASSES))


def test_model_keras_saves_and_loads_with_the_layer(tmp_path, pixels):
    import keras

    model = _classifier()
    model.save(tmp_path / "model.keras")
    x = normalize(pixels)
    want = np.asarray(model(x))
    for kwargs in ({}, {"custom_objects": custom_objects()}):
        loaded = keras.models.load_model(tmp_path / "model.keras", compile=False, **kwargs)
        np.testing.assert_allclose(np.asarray(loaded(x)), want, atol=1e-6)
    layer = loaded.get_layer("colour_histogram").get_layer("colour_histogram")
    assert layer.get_config()["bins"] == [8, 8, 8] and not layer.trainable_weights


def test_tflite_uses_builtin_ops_only_and_agrees_with_keras(pixels):
    from ai_edge_litert.interpreter import Interpreter

    from conversion.evaluate import run_tflite
    from conversion.variants import convert

    model = _classifier()
    x = normalize(pixels)
    want = np.asarray(model(x))
    for variant in ("float32", "float16", "dynamic"):
        blob = convert(model, variant)
        ops = {op["op_name"] for op in Interpreter(model_content=blob)._get_ops_details()}
        assert not [op for op in ops if op.startswith("Flex") or op == "CUSTOM"], ops
        run = run_tflite(blob, x)
        assert run.input_shape == [1, 224, 224, 3] and run.input_dtype == "float32"
        np.testing.assert_array_equal(run.probabilities.argmax(1), want.argmax(1))
        tolerance = 1e-4 if variant == "float32" else 0.05  # the others round the head
        assert np.abs(run.probabilities - want).max() < tolerance, variant


@pytest.mark.slow
def test_embed_train_convert_on_plain_directories(flowers, tmp_path):
    """The whole chain with ARCHITECTURE=colour_histogram: records name it, model.keras holds
    it, and Convert publishes a float variant that agrees, since int8 cannot run it."""
    from conversion.convert import ConvertOptions, convert_stage
    from pipelines.records import load_dir
    from pipelines.worker import DATUM_MANIFEST_ENV, run_batched
    from training.embed import make_processor
    from training.train import TrainOptions, train

    work = tmp_path / "embed"
    os.environ[DATUM_MANIFEST_ENV] = str(make_manifest(flowers, work))
    try:
        run_batched(make_processor(KerasEmbedder(ARCH), batch_size=16), batch_size=64)
    finally:
        del os.environ[DATUM_MANIFEST_ENV]
    embeddings = merge_outputs(work, tmp_path / "Embed")
    data = load_dir(embeddings)
    assert data.architecture == ARCH and data.vectors.shape == (60, 1024)

    model_dir = tmp_path / "Train"
    metrics = train(embeddings, flowers, model_dir, TrainOptions(seed=0, epochs=50))
    assert metrics["architecture"] == ARCH
    assert metrics["consistency"]["top1_agreement"] == 1.0
    assert metrics["train"]["accuracy"] > 0.8

    out = tmp_path / "Convert"
    report = convert_stage(model_dir, flowers, out, options=ConvertOptions())
    variants = report["variants"]
    assert variants["int8"]["error"].startswith("VariantUnsupported: no int8 variant")
    assert variants["int8"]["agreement"] is None
    for name in ("float32", "float16", "dynamic"):
        assert variants[name]["agreement"] == 1.0, name
    assert report["published"]["variant"] == "dynamic"
    assert (out / "optimized_graph.lite").read_bytes()
    assert json.loads((out / "conversion.json").read_text())["published"]["variant"] == "dynamic"
