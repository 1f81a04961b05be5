"""Architecture names, weights, normalisation outside the backbone, and the TFLite embedder."""

from __future__ import annotations

import numpy as np
import pytest

from tests.shared import shared_dir
from tests.training.flowers import ARCH, flower_source
from training.backbones import (
    KerasEmbedder,
    TFLiteEmbedder,
    UnknownArchitecture,
    WeightsUnavailable,
    build_backbone,
    normalize,
    parse_architecture,
)
from training.images import decode


@pytest.mark.parametrize(
    "name, family, alpha, size",
    [
        ("mobilenet_1.0_224", "mobilenet_v1", 1.0, 224),
        ("mobilenet_0.50_224", "mobilenet_v1", 0.5, 224),
        ("mobilenet_0.25_128", "mobilenet_v1", 0.25, 128),
        ("mobilenet_v2_1.0_224", "mobilenet_v2", 1.0, 224),
        ("mobilenet_v2_0.35_96", "mobilenet_v2", 0.35, 96),
    ],
)
def test_names_parse_generally(name, family, alpha, size):
    a = parse_architecture(name)
    assert (a.family, a.alpha, a.size) == (family, alpha, size)


def test_weight_file_names_match_keras_cache_names():
    assert (
        parse_architecture("mobilenet_1.0_224").weights_filename == "mobilenet_1_0_224_tf_no_top.h5"
    )
    assert (
        parse_architecture("mobilenet_0.25_224").weights_filename
        == "mobilenet_2_5_224_tf_no_top.h5"
    )
    assert (
        parse_architecture("mobilenet_v2_1.0_224").weights_filename
        == "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
    )


@pytest.mark.parametrize("name", ["inception_v3", "mobilenet_0.3_224", "mobilenet_1.0_225", ""])
def test_unknown_names_are_rejected_listing_the_valid_ones(name):
    with pytest.raises(UnknownArchitecture) as e:
        parse_architecture(name)
    assert "mobilenet_v2_<alpha>_<size>" in str(e.value) and "0.25" in str(e.value)


def test_missing_weights_offline_name_the_file_and_the_fix():
    with pytest.raises(WeightsUnavailable) as e:
        build_backbone("mobilenet_0.50_224")
    msg = str(e.value)
    assert "mobilenet_5_0_224_tf_no_top.h5" in msg
    assert "KERAS_HOME" in msg and "models" in msg


@pytest.fixture(scope="module")
def pixels():
    paths = sorted((flower_source() / "tulips").glob("*.jpg"))[:3]
    return np.stack([decode(p) for p in paths])


def test_keras_embedder_normalises_outside_the_backbone(pixels):
    emb = KerasEmbedder(ARCH)
    assert emb.dim == 256 and emb.name == ARCH
    got = emb.embed(pixels)
    want = emb.model.predict(normalize(pixels), verbose=0)
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert normalize(np.array([0, 255], np.uint8)).tolist() == [-1.0, 1.0]
    assert emb.embed(pixels[:0]).shape == (0, 256)


def test_tflite_embedder_takes_raw_uint8_pixels_in_batches(pixels):
    path = shared_dir() / "models" / "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite"
    emb = TFLiteEmbedder(path)
    assert emb.dim == 1024 and emb.name.startswith("tflite:")
    batch = emb.embed(pixels)
    one = emb.embed(pixels[:1])
    assert batch.shape == (3, 1024) and batch.dtype == np.float32
    np.testing.assert_allclose(batch[0], one[0], atol=1e-5)
    assert batch.std() > 0 and not np.allclose(batch[0], batch[1])
