"""What the app will show for a photo: the model run with LiteRT, fed as that app feeds it.

The Android app shows the top 3 labels (``RESULTS_TO_SHOW = 3``); the iOS app the top 5 whose
probability is at least 0.1 (``kNumResults = 5``, ``kThreshold = 0.1f``). ``predict`` takes
``top_k`` and ``min_probability`` so that either can be reproduced. Inference runs on one
thread, as on a phone's single interpreter.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import tflite_file
from .errors import UnsupportedModel
from .labels import check_labels, read_labels
from .preprocess import PlatformSpec, platform_spec, preprocess

IOS_TOP_K = 5
IOS_MIN_PROBABILITY = 0.1
ANDROID_TOP_K = 3


class Prediction(NamedTuple):
    label: str
    probability: float


class LiteClassifier:
    """One LiteRT interpreter for one model; ``scores`` runs it on one preprocessed image."""

    def __init__(
        self, model: bytes | str | Path, *, num_threads: int = 1, source: str | None = None
    ) -> None:
        from ai_edge_litert.interpreter import Interpreter

        if isinstance(model, (bytes, bytearray)):
            self.data, self.source = bytes(model), source or "model bytes"
        else:
            self.data, self.source = tflite_file.read_model_file(model), source or str(model)
        self.info = tflite_file.inspect_model(self.data, source=self.source)
        if len(self.info.inputs) != 1 or len(self.info.outputs) != 1:
            raise UnsupportedModel(
                f"{self.source} has {len(self.info.inputs)} inputs and {len(self.info.outputs)} "
                "outputs; an app classifier has one of each"
            )
        try:
            self.interpreter = Interpreter(model_content=self.data, num_threads=num_threads)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise UnsupportedModel(f"LiteRT cannot run {self.source}: {exc}") from exc
        self._input = self.interpreter.get_input_details()[0]
        self._output = self.interpreter.get_output_details()[0]
        shape = tuple(int(d) for d in self._input["shape"])
        if len(shape) != 4 or shape[0] != 1 or shape[3] != 3:
            raise UnsupportedModel(
                f"{self.source}: input shape {list(shape)} is not [1, height, width, 3]"
            )
        self.input_size = (shape[2], shape[1])  # (width, height)
        self.last_invoke_seconds = 0.0

    @property
    def num_classes(self) -> int:
        return self.info.num_classes

    def scores(self, image: np.ndarray) -> np.ndarray:
        """The output vector for one float32 ``(height, width, 3)`` image."""
        width, height = self.input_size
        if image.shape != (height, width, 3):
            raise UnsupportedModel(
                f"{self.source} takes {width}x{height}x3 images; got shape {list(image.shape)}"
            )
        x = image[None].astype(np.float32)
        dtype = self._input["dtype"]
        if dtype != np.float32:  # a quantized input: store the float as the model's integers
            scale, zero_point = self._input["quantization"]
            info = np.iinfo(dtype)
            x = np.clip(np.round(x / scale + zero_point), info.min, info.max).astype(dtype)
        self.interpreter.set_tensor(self._input["index"], x)
        start = time.perf_counter()
        self.interpreter.invoke()
        self.last_invoke_seconds = time.perf_counter() - start
        out = self.interpreter.get_tensor(self._output["index"])[0]
        if out.dtype != np.float32:
            scale, zero_point = self._output["quantization"]
            out = (out.astype(np.float32) - zero_point) * np.float32(scale)
        return out.copy()


def resolve_labels(
    data: bytes, labels: Sequence[str] | str | Path | None, *, num_classes: int, source: str
) -> list[str]:
    """Labels given as a list or a labels.txt path, else the ones embedded in the model."""
    from .metadata import model_labels

    if isinstance(labels, (str, Path)):
        found, where = read_labels(labels), str(labels)
    elif labels is not None:
        found, where = list(labels), "the labels given"
    else:
        found, where = model_labels(data, source=source), f"the labels embedded in {source}"
        if found is None:
            from .errors import LabelsMismatch

            raise LabelsMismatch(
                f"{source} carries no labels (no Tulip manifest, no packed labels.txt); "
                "pass the labels.txt that was exported with it"
            )
    return check_labels(found, num_classes=num_classes, source=where)


def top_predictions(
    scores: np.ndarray, labels: Sequence[str], *, top_k: int, min_probability: float = 0.0
) -> list[Prediction]:
    """The ``top_k`` highest scores, highest first; ties keep the output order."""
    order = np.argsort(-scores, kind="stable")
    picked = [
        Prediction(labels[i], float(scores[i])) for i in order if scores[i] >= min_probability
    ]
    return picked[: max(0, top_k)]


def predict(
    model_path: str | Path | bytes,
    images: Sequence[str | Path | bytes],
    *,
    platform: str | PlatformSpec = "android",
    top_k: int = ANDROID_TOP_K,
    min_probability: float = 0.0,
    labels: Sequence[str] | str | Path | None = None,
) -> list[list[Prediction]]:
    """For each image, the top-k ``(label, probability)`` the app on ``platform`` would show.

    Labels come from ``labels`` (a list, or a labels.txt path) or else from the model's
    embedded manifest. Raises ``InvalidModelFile``, ``LabelsMismatch``, ``InvalidImage``.
    """
    spec = platform_spec(platform)
    classifier = LiteClassifier(model_path)
    names = resolve_labels(
        classifier.data, labels, num_classes=classifier.num_classes, source=classifier.source
    )
    if spec.size != classifier.input_size:
        spec = _with_size(spec, classifier.input_size)
    results = []
    for image in images:
        scores = classifier.scores(preprocess(image, spec))
        results.append(top_predictions(scores, names, top_k=top_k, min_probability=min_probability))
    return results


def _with_size(spec: PlatformSpec, size: tuple[int, int]) -> PlatformSpec:
    from dataclasses import replace

    return replace(spec, size=size)
