"""Keras model to TensorFlow Lite, in the four variants an app might ship.

* ``float32``: the reference; largest.
* ``float16``: weights stored as float16 (half the size); runs as float on CPU.
* ``dynamic``: weights int8, activations float at run time; about a quarter of the size.
* ``int8``: weights and activations int8, calibrated on a representative dataset drawn from
  the training split; about a quarter of the size and fastest on CPUs and NPUs.

Every variant keeps the float32 interface the tensorflow-for-poets apps use: input float
``1x224x224x3`` (already normalised), output float probabilities. For ``int8`` the converter
adds a quantize op after the input and a dequantize op before the output, so the apps need
no change. TensorFlow is imported inside the functions.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterable

import numpy as np

VARIANTS = ("float32", "float16", "dynamic", "int8")


def convert(
    model,
    variant: str,
    *,
    representative: Callable[[], Iterable[np.ndarray]] | None = None,
) -> bytes:
    """The ``.tflite`` flatbuffer of ``model`` for one variant.

    ``representative`` yields normalised float32 images of shape ``(1, h, w, 3)``; it is
    required for ``int8``.
    """
    import tensorflow as tf

    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if variant == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif variant == "int8":
        if representative is None:
            raise ValueError("int8 conversion needs a representative dataset")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]

        def gen():
            for x in representative():
                yield [np.asarray(x, dtype=np.float32)]

        converter.representative_dataset = gen
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.float32
        converter.inference_output_type = tf.float32
    with contextlib.redirect_stdout(io.StringIO()):  # Keras' export chatter, not results
        return bytes(converter.convert())
