"""Which Keras layers a fused TFLite op stands for, to price keeping it float in int8."""

from __future__ import annotations

import pytest

from conversion.variants import VARIANTS, _layer_params, _node_params, convert_with_report


def test_fused_op_names_map_to_the_layers_they_fuse():
    params = {"conv_pw_1": 2048, "conv_pw_1_bn": 256, "conv_pw_13": 1_048_576}
    name = (
        "clf_1/mobilenet_1.00_224_1/conv_pw_1_relu_1/Relu6;"
        "clf_1/mobilenet_1.00_224_1/conv_pw_1_bn_1/batchnorm/add_1;"
        "clf_1/mobilenet_1.00_224_1/conv_pw_1_1/convolution"
    )
    assert _node_params(name, params) == 2048 + 256
    assert _node_params("model/unknown_op/x", params) == 0


def test_nested_models_are_counted_by_their_leaf_layers():
    import keras

    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="a")], name="inner")
    inp = keras.Input((4,))
    outer = keras.Model(inp, keras.layers.Dense(2, name="b")(inner(inp)))
    params = _layer_params(outer)
    assert params["a"] == 15 and params["b"] == 8 and "inner" not in params


def test_unknown_variant_and_missing_calibration_are_refused():
    with pytest.raises(ValueError, match="unknown variant"):
        convert_with_report(None, "int4")
    with pytest.raises(ValueError, match="representative"):
        convert_with_report(None, "int8")
    assert VARIANTS == ("float32", "float16", "dynamic", "int8")
