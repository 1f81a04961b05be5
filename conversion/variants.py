"""Keras model to TensorFlow Lite, in the four variants an app might ship.

* ``float32``: the reference; largest.
* ``float16``: weights stored as float16 (half the size); runs as float on CPU.
* ``dynamic``: weights int8, activations float at run time; about a quarter of the size.
* ``int8``: weights and activations int8, calibrated on a representative dataset drawn from
  the training split; about a quarter of the size and the fastest on CPUs. The few small ops
  that quantise worst (measured with LiteRT's quantisation debugger) may stay float, within a
  budget of 2% of the parameters; ``conversion.json`` lists them. The head's bias is then
  corrected for the mean shift quantisation puts into the features (measured on training
  images), which halves the top-1 flips against the float model.

Every variant keeps the float32 interface the tensorflow-for-poets apps use: input float
``1x224x224x3`` (already normalised), output float probabilities. For ``int8`` the converter
adds a quantize op after the input and a dequantize op before the output, so the apps need
no change. TensorFlow is imported inside the functions.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

VARIANTS = ("float32", "float16", "dynamic", "int8")
#: An int8 op whose output error exceeds this many quantisation steps (RMS) is a candidate to
#: keep in float; ideal rounding gives about 0.29.
SENSITIVITY_THRESHOLD = 1.0
#: At most this fraction of the model's parameters may stay float in the int8 variant.
FLOAT_BUDGET = 0.02


class VariantUnsupported(ValueError):
    """The model holds a layer that says it cannot be converted to this variant."""


def int8_blocker(model) -> str | None:
    """Why ``model`` cannot be quantised to int8, when one of its layers says so (a layer's
    ``int8_blocker`` text; ``training.histogram.ColourHistogram`` has one), else None.
    Checked before converting because LiteRT may abort the process, not raise, when it runs
    such a model."""

    def walk(m):
        for layer in getattr(m, "layers", []):
            yield layer
            yield from walk(layer)

    for layer in walk(model):
        reason = getattr(layer, "int8_blocker", None)
        if reason:
            return f"{layer.name}: {reason}"
    return None


@dataclass
class Conversion:
    """A converted model and, for int8, which layers stayed float and why."""

    blob: bytes
    float_layers: list[dict] = field(default_factory=list)
    bias_correction: dict | None = None


def convert(
    model,
    variant: str,
    *,
    representative: Callable[[], Iterable[np.ndarray]] | None = None,
    sensitivity_threshold: float = SENSITIVITY_THRESHOLD,
    float_budget: float = FLOAT_BUDGET,
) -> bytes:
    """The ``.tflite`` flatbuffer of ``model`` for one variant.

    ``representative`` yields normalised float32 images of shape ``(1, h, w, 3)``; it is
    required for ``int8``.
    """
    return convert_with_report(
        model,
        variant,
        representative=representative,
        sensitivity_threshold=sensitivity_threshold,
        float_budget=float_budget,
    ).blob


def _converter(model, variant: str, representative):
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if variant == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif variant == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]

        def gen():
            for x in representative():
                yield [np.asarray(x, dtype=np.float32)]

        converter.representative_dataset = gen
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.float32
        converter.inference_output_type = tf.float32
    return converter


def convert_with_report(
    model,
    variant: str,
    *,
    representative: Callable[[], Iterable[np.ndarray]] | None = None,
    sensitivity_threshold: float = SENSITIVITY_THRESHOLD,
    float_budget: float = FLOAT_BUDGET,
    debug_samples: int = 10,
    bias_correction: bool = True,
) -> Conversion:
    """``convert``, plus for int8 the layers kept float and the head's bias correction."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    if variant == "int8" and representative is None:
        raise ValueError("int8 conversion needs a representative dataset")
    if variant == "int8" and (blocker := int8_blocker(model)):
        raise VariantUnsupported(f"no int8 variant: {blocker}")
    if variant != "int8":
        with contextlib.redirect_stdout(io.StringIO()):  # Keras' export chatter, not results
            return Conversion(bytes(_converter(model, variant, representative).convert()))

    def int8(m) -> Conversion:
        if float_budget <= 0:
            with contextlib.redirect_stdout(io.StringIO()):
                return Conversion(bytes(_converter(m, "int8", representative).convert()))
        return _selective_int8(
            m,
            representative,
            threshold=sensitivity_threshold,
            float_budget=float_budget,
            debug_samples=debug_samples,
        )

    split = _head_split(model) if bias_correction else None
    if split is None:
        return int8(model)
    features, head = split
    correction = _head_bias_correction(features, head, int8(features).blob, representative)
    result = int8(_with_head_bias(model, features, head, correction["bias"]))
    del correction["bias"]
    result.bias_correction = correction
    return result


def _head_split(model):
    """(feature model, Dense head) when ``model`` ends in a Dense layer, else None."""
    import keras

    head = model.layers[-1] if model.layers else None
    if not isinstance(head, keras.layers.Dense) or len(model.inputs) != 1:
        return None
    return keras.Model(model.inputs[0], head.input), head


def _head_bias_correction(features, head, features_int8: bytes, representative) -> dict:
    """Bias correction of the classifier head for int8 features.

    Quantising the backbone shifts each pooled feature by a small, mostly systematic amount
    (values rounded towards the grid near zero, for one). Over the calibration images the
    mean shift ``d`` of the int8 features from the float ones is measured with LiteRT, and
    the head's bias becomes ``b - d @ W``, so the int8 logits are centred where the float
    ones are. Only training-split images are used, never the test split.
    """
    from .evaluate import run_tflite

    x = np.concatenate([np.asarray(v, dtype=np.float32) for v in representative()])
    quantised = run_tflite(features_int8, x, num_threads=os.cpu_count() or 1).probabilities
    exact = np.concatenate(
        [np.asarray(features(x[i : i + 32], training=False)) for i in range(0, len(x), 32)]
    ).reshape(len(x), -1)
    shift = (quantised - exact).mean(axis=0)
    kernel, bias = head.get_weights()
    return {
        "applied": True,
        "images": len(x),
        "mean_shift_norm": round(float(np.linalg.norm(shift)), 4),
        "mean_error_norm": round(float(np.linalg.norm(quantised - exact, axis=1).mean()), 4),
        "feature_norm": round(float(np.linalg.norm(exact, axis=1).mean()), 4),
        "bias": (bias - shift @ kernel).astype(np.float32),
    }


def _with_head_bias(model, features, head, bias: np.ndarray):
    """A copy of ``model`` whose Dense head has ``bias``; same input, same output meaning."""
    import keras

    clone = keras.layers.Dense.from_config(head.get_config())
    out = clone(features.outputs[0])
    clone.set_weights([head.get_weights()[0], bias])
    return keras.Model(features.input, out, name=f"{model.name}_int8_corrected")


def _layer_params(model) -> dict[str, int]:
    """Parameter count of every leaf layer, inside nested models too, by layer name."""
    counts: dict[str, int] = {}

    def walk(m) -> None:
        for layer in getattr(m, "layers", []):
            if getattr(layer, "layers", None):  # a nested model: count its layers, not it
                walk(layer)
            else:
                counts[layer.name] = sum(int(np.prod(w.shape)) for w in layer.weights)

    walk(model)
    return counts


def _node_params(tensor_name: str, params: dict[str, int]) -> int:
    """Parameters of the Keras layers fused into one TFLite op, found from its tensor name
    (``model/conv_pw_1_1/convolution;model/conv_pw_1_bn_1/...``); 0 when none is recognised."""
    seen: set[str] = set()
    for part in tensor_name.split(";"):
        for seg in part.split("/"):
            for name in (seg, re.sub(r"_\d+$", "", seg)):
                if name in params:
                    seen.add(name)
                    break
    return sum(params[n] for n in seen)


def _selective_int8(
    model, representative, *, threshold: float, float_budget: float, debug_samples: int
) -> Conversion:
    """Full-integer quantisation, except the few small layers it hurts most.

    LiteRT's quantisation debugger runs the float and the quantised model side by side on a
    few calibration images and measures, per op, the RMS error of its output in units of its
    quantisation step (about 0.29 is ideal rounding). Ops worse than ``threshold`` are kept
    float, most harmful first, while their weights stay within ``float_budget`` of all the
    model's parameters: in MobileNet v1 these are the first depthwise/pointwise layers,
    a few thousand weights that otherwise cost several points of top-1.
    """
    import csv

    import tensorflow as tf

    samples = []
    for x in representative():
        samples.append(np.asarray(x, dtype=np.float32))
        if len(samples) >= debug_samples:
            break

    def debug_dataset():
        for x in samples:
            yield [x]

    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=_converter(model, "int8", representative), debug_dataset=debug_dataset
        )
        debugger.run()
        buf = io.StringIO()
        debugger.layer_statistics_dump(buf)
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    params = _layer_params(model)
    total = max(1, sum(params.values()))
    scored = []
    for r in rows:
        scale = float(r.get("scale") or 0)
        if scale <= 0:
            continue
        error = float(r["mean_squared_error"]) ** 0.5 / scale
        if error > threshold:
            scored.append((error, r["tensor_name"]))
    chosen, used = [], 0
    for error, name in sorted(scored, reverse=True):
        n = _node_params(name, params)
        if n == 0 or used + n > float_budget * total:
            continue
        chosen.append(
            {"op": name.split(";")[0], "error_in_steps": round(error, 3), "params": n, "node": name}
        )
        used += n
    if not chosen:
        with contextlib.redirect_stdout(io.StringIO()):
            return Conversion(bytes(_converter(model, "int8", representative).convert()))
    converter = _converter(model, "int8", representative)
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
        tf.lite.OpsSet.TFLITE_BUILTINS,
    ]
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        options = tf.lite.experimental.QuantizationDebugOptions(
            denylisted_nodes=[c["node"] for c in chosen]
        )
        selective = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=debug_dataset, debug_options=options
        )
        blob = bytes(selective.get_nondebug_quantized_model())
    for c in chosen:
        del c["node"]
    return Conversion(blob, chosen)
