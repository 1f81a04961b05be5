"""How faithful and how fast is a ``.tflite`` model? Measured with ai-edge-litert.

For one model and a set of images: its probabilities, its top-1 agreement with reference
probabilities (the Keras model's), its accuracy against labels, and single-thread latency
per image (``num_threads=1``, one image per ``invoke``, the way a phone app calls it).
LiteRT is imported inside the functions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np


@dataclass
class TFLiteRun:
    probabilities: np.ndarray  # (n, classes)
    latencies_ms: np.ndarray  # (n,)
    input_dtype: str
    input_shape: list[int]
    output_dtype: str

    def latency(self) -> dict:
        lat = self.latencies_ms
        if not len(lat):
            return {"median": None, "p90": None, "mean": None, "n": 0}
        return {
            "median": round(float(np.median(lat)), 3),
            "p90": round(float(np.percentile(lat, 90)), 3),
            "mean": round(float(np.mean(lat)), 3),
            "n": len(lat),
        }


def run_tflite(
    model: bytes, inputs: np.ndarray, *, num_threads: int = 1, warmup: int = 2
) -> TFLiteRun:
    """Invoke ``model`` once per image of ``inputs`` (normalised float32 NHWC)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model, num_threads=num_threads)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]

    def prepare(x: np.ndarray) -> np.ndarray:
        x = x[None].astype(np.float32)
        scale, zero = inp.get("quantization", (0.0, 0))
        if inp["dtype"] in (np.int8, np.uint8) and scale:
            info = np.iinfo(inp["dtype"])
            return np.clip(np.rint(x / scale + zero), info.min, info.max).astype(inp["dtype"])
        return x.astype(inp["dtype"])

    def read() -> np.ndarray:
        y = interpreter.get_tensor(out["index"]).reshape(-1).astype(np.float32)
        scale, zero = out.get("quantization", (0.0, 0))
        if out["dtype"] in (np.int8, np.uint8) and scale:
            y = (y - zero) * scale
        return y

    for x in inputs[:warmup]:
        interpreter.set_tensor(inp["index"], prepare(x))
        interpreter.invoke()
    probs, lat = [], []
    for x in inputs:
        interpreter.set_tensor(inp["index"], prepare(x))
        t0 = time.perf_counter()
        interpreter.invoke()
        lat.append((time.perf_counter() - t0) * 1000.0)
        probs.append(read())
    n_out = int(np.prod(out["shape"][1:]))
    return TFLiteRun(
        probabilities=np.stack(probs) if probs else np.zeros((0, n_out), np.float32),
        latencies_ms=np.array(lat),
        input_dtype=np.dtype(inp["dtype"]).name,
        input_shape=[int(v) for v in inp["shape"]],
        output_dtype=np.dtype(out["dtype"]).name,
    )


def agreement(probs: np.ndarray, reference: np.ndarray) -> float | None:
    """Fraction of images whose top-1 class is the same in both."""
    if not len(probs):
        return None
    return float(np.mean(probs.argmax(axis=1) == reference.argmax(axis=1)))


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float | None:
    if not len(probs):
        return None
    return float(np.mean(probs.argmax(axis=1) == labels))
