"""Which network turns pixels into embeddings: architecture names, weights, and normalisation.

Names follow the seed's ``retrain.py --architecture``: ``mobilenet_<alpha>_<size>`` is
MobileNet v1 and ``mobilenet_v2_<alpha>_<size>`` is MobileNetV2, both from
``keras.applications`` with ImageNet weights, no top, average pooling. Weights arrive through
Keras' own cache (``$KERAS_HOME/models`` or ``~/.keras/models``) and download path.

The backbone takes the *normalised* float tensor, ``(x - 127.5) / 127.5``, exactly what the
iOS app feeds the exported model (the Android app's ``(x - 128) / 128`` is within half a grey
level of it). Normalisation happens outside the Keras model so that the exported model's
input is the tensor the apps already build.

``colour_histogram`` is the fallback for when no weights can be had (the offline demo): a
fixed Keras layer of joint HSV histograms (``training.histogram``) with no weights at all. It
takes the same normalised 224x224x3 input, so it flows through Embed, Train, Convert and the
mobile export like a MobileNet; it is far weaker on real photos.

A ``.tflite`` embedder (for example the shared uint8 MobileNet) can stand in for a Keras
backbone; it is chosen by giving a path instead of a name.

TensorFlow and LiteRT are imported inside the functions that need them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from pipelines.errors import TulipError

DEFAULT_ARCHITECTURE = "mobilenet_1.0_224"
ARCHITECTURE_ENV = "ARCHITECTURE"

_V1_ALPHAS = (0.25, 0.5, 0.75, 1.0)
_V1_SIZES = (128, 160, 192, 224)
_V2_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
_V2_SIZES = (96, 128, 160, 192, 224)
HISTOGRAM = "colour_histogram"
_NAME = re.compile(r"^mobilenet_(?P<v2>v2_)?(?P<alpha>\d+(?:\.\d+)?)_(?P<size>\d+)$")


class UnknownArchitecture(TulipError):
    """An ``--architecture`` name that is not a backbone Tulip can build."""


class WeightsUnavailable(TulipError):
    """ImageNet weights are neither in Keras' cache nor downloadable."""


def valid_architectures() -> list[str]:
    v1 = [f"mobilenet_{a:.2f}_{s}".replace("1.00", "1.0") for a in _V1_ALPHAS for s in _V1_SIZES]
    v2 = [f"mobilenet_v2_{a}_{s}" for a in _V2_ALPHAS for s in _V2_SIZES]
    return [*v1, *v2, HISTOGRAM]


@dataclass(frozen=True)
class Architecture:
    name: str
    family: str  # "mobilenet_v1", "mobilenet_v2" or "colour_histogram"
    alpha: float | None  # None for colour_histogram
    size: int

    @property
    def image_size(self) -> tuple[int, int]:
        """(width, height), as Pillow wants it."""
        return (self.size, self.size)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.size, self.size, 3)

    @property
    def needs_weights(self) -> bool:
        """False for colour_histogram, a fixed computation with nothing to download."""
        return self.family != HISTOGRAM

    @property
    def weights_filename(self) -> str | None:
        """The file name Keras caches the no-top ImageNet weights under (None: no weights)."""
        if not self.needs_weights:
            return None
        if self.family == "mobilenet_v1":
            alpha_text = {1.0: "1_0", 0.75: "7_5", 0.5: "5_0", 0.25: "2_5"}[self.alpha]
            return f"mobilenet_{alpha_text}_{self.size}_tf_no_top.h5"
        return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{self.alpha}_{self.size}_no_top.h5"


def parse_architecture(name: str) -> Architecture:
    """``mobilenet_0.25_224`` -> MobileNet v1, alpha 0.25, 224 px. Raises UnknownArchitecture."""
    if name.strip() == HISTOGRAM:
        return Architecture(HISTOGRAM, HISTOGRAM, None, 224)
    m = _NAME.match(name.strip())
    if m:
        alpha, size = float(m["alpha"]), int(m["size"])
        if m["v2"] and alpha in _V2_ALPHAS and size in _V2_SIZES:
            return Architecture(name.strip(), "mobilenet_v2", alpha, size)
        if not m["v2"] and alpha in _V1_ALPHAS and size in _V1_SIZES:
            return Architecture(name.strip(), "mobilenet_v1", alpha, size)
    raise UnknownArchitecture(
        f"unknown architecture {name!r}; valid names are mobilenet_<alpha>_<size> with alpha in "
        f"{', '.join(map(str, _V1_ALPHAS))} and size in {', '.join(map(str, _V1_SIZES))}, or "
        f"mobilenet_v2_<alpha>_<size> with alpha in {', '.join(map(str, _V2_ALPHAS))} and size "
        f"in {', '.join(map(str, _V2_SIZES))}, e.g. {DEFAULT_ARCHITECTURE}; or {HISTOGRAM} "
        "(no weights needed, much weaker)"
    )


def default_architecture() -> str:
    return os.environ.get(ARCHITECTURE_ENV) or DEFAULT_ARCHITECTURE


def keras_cache_dir() -> Path:
    """Where Keras looks for cached weights: ``$KERAS_HOME/models`` or ``~/.keras/models``.

    Keras reads ``KERAS_HOME`` once, when it is imported; ask it when it is loaded.
    """
    import sys

    config = sys.modules.get("keras.src.backend.config")
    if config is not None and hasattr(config, "keras_home"):
        return Path(config.keras_home()) / "models"
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


def normalize(pixels: np.ndarray) -> np.ndarray:
    """uint8 RGB pixels to the float input of MobileNet: ``(x - 127.5) / 127.5`` in [-1, 1]."""
    return (np.asarray(pixels, dtype=np.float32) - 127.5) / 127.5


def build_backbone(architecture: str | Architecture, *, weights: str | None = "imagenet"):
    """The Keras feature extractor: normalised float NHWC in, pooled embedding out.

    ``weights`` does not apply to colour_histogram, which has none."""
    arch = parse_architecture(architecture) if isinstance(architecture, str) else architecture
    if not arch.needs_weights:
        from training import histogram

        return histogram.build(size=arch.size)
    import keras

    constructor = (
        keras.applications.MobileNet
        if arch.family == "mobilenet_v1"
        else keras.applications.MobileNetV2
    )
    try:
        model = constructor(
            input_shape=arch.input_shape,
            alpha=arch.alpha,
            include_top=False,
            pooling="avg",
            weights=weights,
        )
    except Exception as e:
        if weights != "imagenet" or (keras_cache_dir() / arch.weights_filename).is_file():
            raise
        raise WeightsUnavailable(
            f"ImageNet weights for {arch.name} are not cached and could not be downloaded "
            f"({e}); Keras wants the file {arch.weights_filename}: copy it into "
            f"{keras_cache_dir()} (or set KERAS_HOME to a directory whose models/ holds it), "
            f"or choose an architecture whose weights are cached"
        ) from e
    model.trainable = False
    return model


def custom_objects() -> dict:
    """The custom layers a saved ``model.keras`` may hold, for ``keras.models.load_model``."""
    from training import histogram

    return histogram.custom_objects()


class Embedder(Protocol):
    """Anything that maps a batch of uint8 RGB images to float32 embeddings."""

    name: str  # what goes into EmbeddingRecord.architecture
    image_size: tuple[int, int]  # (width, height)
    dim: int

    def embed(self, pixels: np.ndarray) -> np.ndarray:
        """(n, h, w, 3) uint8 -> (n, dim) float32."""
        ...


class KerasEmbedder:
    """A Keras backbone behind one compiled graph that normalises and runs in inference mode."""

    def __init__(self, architecture: str, *, weights: str | None = "imagenet"):
        import tensorflow as tf

        self.architecture = parse_architecture(architecture)
        self.name = self.architecture.name
        self.image_size = self.architecture.image_size
        self.model = build_backbone(self.architecture, weights=weights)
        self.dim = int(self.model.output_shape[-1])
        model = self.model
        h, w = self.image_size[1], self.image_size[0]

        @tf.function(input_signature=[tf.TensorSpec([None, h, w, 3], tf.uint8)])
        def _embed(pixels):
            x = (tf.cast(pixels, tf.float32) - 127.5) / 127.5
            return model(x, training=False)

        self._embed = _embed

    def embed(self, pixels: np.ndarray) -> np.ndarray:
        if len(pixels) == 0:
            return np.zeros((0, self.dim), np.float32)
        return self._embed(np.ascontiguousarray(pixels, dtype=np.uint8)).numpy().astype(np.float32)


class TFLiteEmbedder:
    """A ``.tflite`` feature extractor run with ai-edge-litert.

    A uint8 model (the shared quantised MobileNet) gets raw pixels; a float model gets the
    normalised tensor. The output is dequantised when the model's output is quantised.
    """

    def __init__(self, path: str | Path, *, num_threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(path)
        if not self.path.is_file():
            raise TulipError(f"no TFLite embedder at {self.path}; give the path of a .tflite file")
        self.name = f"tflite:{self.path.stem}"
        self._interpreter = Interpreter(
            model_path=str(self.path), num_threads=num_threads or os.cpu_count() or 1
        )
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        _, h, w, _ = (int(v) for v in self._input["shape"])
        self.image_size = (w, h)
        self.dim = int(np.prod(self._output["shape"][1:]))
        self._batch = 1

    def _prepare(self, pixels: np.ndarray) -> np.ndarray:
        dtype = self._input["dtype"]
        if dtype == np.uint8:
            return np.ascontiguousarray(pixels, dtype=np.uint8)
        x = normalize(pixels)
        scale, zero = self._input.get("quantization", (0.0, 0))
        if dtype == np.int8 and scale:
            return np.clip(np.rint(x / scale + zero), -128, 127).astype(np.int8)
        return x.astype(dtype)

    def embed(self, pixels: np.ndarray) -> np.ndarray:
        n = len(pixels)
        if n == 0:
            return np.zeros((0, self.dim), np.float32)
        it = self._interpreter
        if n != self._batch:
            it.resize_tensor_input(
                self._input["index"], [n, self.image_size[1], self.image_size[0], 3]
            )
            it.allocate_tensors()
            self._batch = n
        it.set_tensor(self._input["index"], self._prepare(pixels))
        it.invoke()
        out = it.get_tensor(self._output["index"]).reshape(n, -1).astype(np.float32)
        scale, zero = self._output.get("quantization", (0.0, 0))
        if self._output["dtype"] in (np.uint8, np.int8) and scale:
            out = (out - zero) * scale
        return out


def load_embedder(architecture: str | None = None, *, tflite: str | Path | None = None) -> Embedder:
    """A TFLite embedder when a path is given, else the Keras backbone named ``architecture``."""
    if tflite:
        return TFLiteEmbedder(tflite)
    return KerasEmbedder(architecture or default_architecture())
