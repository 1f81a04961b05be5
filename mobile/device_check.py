"""Would the phone agree with the pipeline? The exported model run as each app runs it.

For every labelled test image, the model is run with LiteRT on one thread, once with the
pipeline's own preprocessing (the reference) and once per platform with that app's
preprocessing (``mobile.preprocess``). Per platform the report gives the accuracy, the
agreement with the reference predictions, the fraction of predictions the app's
preprocessing changes (flagged above 1% by default), and the latency per image.

A mismatch that an app would really ship, such as ``mean 0, std 255`` or BGR channel order,
is tested by passing a custom ``PlatformSpec``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InvalidCheckInput
from .predict import LiteClassifier, resolve_labels
from .preprocess import PIPELINE, PLATFORMS, PlatformSpec, platform_spec, preprocess

DEFAULT_MAX_CHANGED = 0.01


@dataclass(frozen=True)
class ChangedPrediction:
    path: str
    truth: str
    reference: str
    platform: str


@dataclass(frozen=True)
class PlatformResult:
    platform: str
    spec: dict[str, Any]
    images: int
    accuracy: float
    agreement: float
    changed_fraction: float
    flagged: bool
    latency_ms_median: float
    latency_ms_p90: float
    preprocess_ms_median: float
    changed: tuple[ChangedPrediction, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "changed"}
        d["changed"] = [c.__dict__ for c in self.changed]
        return d


@dataclass(frozen=True)
class DeviceCheckReport:
    model: str
    labels: tuple[str, ...]
    images: int
    reference: str  # "pipeline" (computed here) or "given" (the pipeline's own predictions)
    reference_accuracy: float
    max_changed: float
    platforms: tuple[PlatformResult, ...]
    threads: int = 1

    @property
    def flagged(self) -> list[str]:
        """Names of the platforms whose preprocessing changes too many predictions."""
        return [p.platform for p in self.platforms if p.flagged]

    def platform(self, name: str) -> PlatformResult:
        return next(p for p in self.platforms if p.platform == name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema": "tulip.device-check/v1",
            "model": self.model,
            "labels": list(self.labels),
            "images": self.images,
            "reference": self.reference,
            "reference_accuracy": self.reference_accuracy,
            "max_changed": self.max_changed,
            "threads": self.threads,
            "flagged": self.flagged,
            "platforms": [p.as_dict() for p in self.platforms],
        }


def check_platforms(
    model_path: str | Path | bytes,
    labeled_images: Sequence[tuple[str | Path, str]],
    reference_predictions: Sequence[int] | None = None,
    *,
    platforms: Sequence[str | PlatformSpec] = tuple(PLATFORMS),
    reference: str | PlatformSpec = PIPELINE,
    labels: Sequence[str] | str | Path | None = None,
    max_changed: float = DEFAULT_MAX_CHANGED,
    warmup: int = 1,
) -> DeviceCheckReport:
    """Run the model as each app would on ``labeled_images`` and compare with the pipeline.

    ``reference_predictions`` are the pipeline's own predicted class indices for the same
    images, in the same order (e.g. from Convert's evaluation); when None they are computed
    here with the ``reference`` preprocessing. A platform is flagged when the fraction of
    images whose prediction differs from the reference exceeds ``max_changed``.
    """
    if not labeled_images:
        raise InvalidCheckInput("the device check got no test images; give labelled images")
    classifier = LiteClassifier(model_path)
    names = resolve_labels(
        classifier.data, labels, num_classes=classifier.num_classes, source=classifier.source
    )
    index = {label: i for i, label in enumerate(names)}
    truth = [index.get(label, -1) for _, label in labeled_images]
    specs = [platform_spec(p) for p in platforms]
    if len({s.name for s in specs}) != len(specs):
        raise InvalidCheckInput(f"platform names repeat: {[s.name for s in specs]}")
    for _ in range(max(0, warmup)):
        classifier.scores(np.zeros((*classifier.input_size[::-1], 3), np.float32))

    if reference_predictions is None:
        ref_spec = platform_spec(reference)
        ref_pred, _, _ = _run(classifier, labeled_images, ref_spec)
        reference_name = "pipeline"
    else:
        ref_pred = [int(p) for p in reference_predictions]
        if len(ref_pred) != len(labeled_images):
            raise InvalidCheckInput(
                f"{len(ref_pred)} reference predictions for {len(labeled_images)} images; "
                "give one per image, in the same order"
            )
        bad = [p for p in ref_pred if not 0 <= p < len(names)]
        if bad:
            raise InvalidCheckInput(
                f"reference predictions {bad[:5]} are not class indices 0..{len(names) - 1}"
            )
        reference_name = "given"

    results = []
    for spec in specs:
        predicted, invoke_s, prep_s = _run(classifier, labeled_images, spec)
        changed = [
            ChangedPrediction(
                path=str(path),
                truth=label,
                reference=names[ref_pred[i]],
                platform=names[predicted[i]],
            )
            for i, (path, label) in enumerate(labeled_images)
            if predicted[i] != ref_pred[i]
        ]
        fraction = len(changed) / len(labeled_images)
        results.append(
            PlatformResult(
                platform=spec.name,
                spec=spec.as_dict(),
                images=len(labeled_images),
                accuracy=_accuracy(predicted, truth),
                agreement=1.0 - fraction,
                changed_fraction=fraction,
                flagged=fraction > max_changed,
                latency_ms_median=float(np.median(invoke_s) * 1e3),
                latency_ms_p90=float(np.percentile(invoke_s, 90) * 1e3),
                preprocess_ms_median=float(np.median(prep_s) * 1e3),
                changed=tuple(changed),
            )
        )
    return DeviceCheckReport(
        model=classifier.source,
        labels=tuple(names),
        images=len(labeled_images),
        reference=reference_name,
        reference_accuracy=_accuracy(ref_pred, truth),
        max_changed=max_changed,
        platforms=tuple(results),
    )


def _run(
    classifier: LiteClassifier,
    labeled_images: Sequence[tuple[str | Path, str]],
    spec: PlatformSpec,
) -> tuple[list[int], list[float], list[float]]:
    if spec.size != classifier.input_size:
        from dataclasses import replace

        spec = replace(spec, size=classifier.input_size)
    predicted, invoke_s, prep_s = [], [], []
    for path, _ in labeled_images:
        start = time.perf_counter()
        x = preprocess(path, spec)
        prep_s.append(time.perf_counter() - start)
        predicted.append(int(np.argmax(classifier.scores(x))))
        invoke_s.append(classifier.last_invoke_seconds)
    return predicted, invoke_s, prep_s


def _accuracy(predicted: Sequence[int], truth: Sequence[int]) -> float:
    return float(np.mean([p == t for p, t in zip(predicted, truth, strict=True)]))
