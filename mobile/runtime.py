"""Which TensorFlow Lite runtime a model needs, and which runtime each app ships.

The TFLite converter writes the oldest runtime that can run a model into its metadata
(``min_runtime_version``, e.g. ``1.6.0`` for a plain float32 MobileNet, ``1.15.0`` once
float16 weights bring DEQUANTIZE v3). An app whose runtime is older stops at "Failed to
construct interpreter". The apps' runtimes, from the tensorflow-for-poets-2 checkout the
export writes into:

* **iOS**: ``ios/tflite/Podfile`` has ``pod 'TensorFlowLite'``, which that app's pod spec
  and lock resolve to at most **1.13.1**: the default ``--ios-runtime``.
* **Android**: ``android/tflite/app/build.gradle`` depends on
  ``org.tensorflow:tensorflow-lite:+``, the newest release at build time: the default
  ``--android-runtime`` is ``latest`` (no floor to hold the model against).

A different app (or an upgraded Podfile) passes its own version. Pure functions: no store.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from . import tflite_file
from .errors import InvalidRuntimeVersion, RuntimeTooOld

MIN_RUNTIME_METADATA = "min_runtime_version"  # the converter's own metadata entry
LATEST = "latest"
DEFAULT_RUNTIMES = {"android": LATEST, "ios": "1.13.1"}
# The variants Convert can keep (``variants/<name>.tflite``), most faithful first: the order
# in which export looks for one an old runtime can run.
FALLBACK_ORDER = ("float32", "dynamic", "float16", "int8")

_VERSION = re.compile(r"^\d+(\.\d+){0,2}$")


def parse_version(text: str, *, what: str = "runtime version") -> tuple[int, int, int]:
    """``"1.13.1"`` -> (1, 13, 1); ``"2.16"`` -> (2, 16, 0). A bad string is refused."""
    text = text.strip()
    if not _VERSION.match(text):
        raise InvalidRuntimeVersion(f"{what} {text!r} is not a version like 1.13.1 (or {LATEST!r})")
    parts = [int(p) for p in text.split(".")]
    return tuple([*parts, 0, 0][:3])  # type: ignore[return-value]


def required_runtime(model_bytes: bytes, *, source: str = "model") -> str | None:
    """The ``min_runtime_version`` the converter wrote into the model; None if it wrote none."""
    model = tflite_file.load_model(model_bytes, source=source)
    raw = tflite_file.named_metadata(model, model_bytes, MIN_RUNTIME_METADATA)
    if raw is None:
        return None
    text = raw.split(b"\0", 1)[0].decode("ascii", "replace").strip()
    return text or None


def interpreter_runtime() -> dict[str, str | None]:
    """The TFLite runtime the device check (``mobile.predict``) really runs models on here:
    ai-edge-litert, whose kernels are current ones, not the app's. Said in its report, so a
    pass here is not read as a pass on an app pinned to an older TensorFlow Lite."""
    from importlib import metadata

    try:
        version = metadata.version("ai-edge-litert")
    except metadata.PackageNotFoundError:
        version = None
    return {"name": "ai-edge-litert", "version": version}


def validate_targets(targets: Mapping[str, str]) -> None:
    for platform, target in targets.items():
        if target != LATEST:
            parse_version(target, what=f"--{platform}-runtime")


def runs_on(required: str | None, target: str) -> bool:
    """Whether a model needing ``required`` loads in a runtime ``target`` (``latest``: any)."""
    if required is None or target == LATEST:
        return True
    return parse_version(required) <= parse_version(target)


@dataclass(frozen=True)
class RuntimeChoice:
    """The model export ships, and why: the published one, or a variant an old runtime runs."""

    variant: str | None  # None: the published model
    content: bytes
    required: str | None  # its min_runtime_version
    published_required: str | None
    targets: dict[str, str]  # platform -> runtime held against

    def as_dict(self) -> dict:
        return {
            "min_runtime_version": self.required,
            "targets": dict(self.targets),
            "variant": self.variant or "published",
            "published_min_runtime_version": self.published_required,
        }


def choose_for_runtimes(
    published: bytes,
    targets: Mapping[str, str],
    *,
    variants: Mapping[str, bytes] | None = None,
    published_variant: str | None = None,
    source: str = "the published model",
) -> RuntimeChoice:
    """The published model when every target runtime runs it; else the first variant of
    ``FALLBACK_ORDER`` among ``variants`` that every target runs. ``RuntimeTooOld`` names the
    platform, both versions and the ways out when none does. One model serves every app of
    one export (atomic, as ``mobile.export``): export the apps separately to give a new
    runtime the published model and an old one the fallback."""
    validate_targets(targets)
    need = required_runtime(published, source=source)
    too_old = {p: t for p, t in targets.items() if not runs_on(need, t)}
    if not too_old:
        return RuntimeChoice(None, published, need, need, dict(targets))
    tried = []
    for name in FALLBACK_ORDER:
        content = (variants or {}).get(name)
        if content is None or name == published_variant:
            continue
        needs = required_runtime(content, source=f"variant {name}")
        tried.append(f"{name} needs {needs or 'no particular version'}")
        if all(runs_on(needs, t) for t in targets.values()):
            return RuntimeChoice(name, content, needs, need, dict(targets))
    platform, target = next(iter(too_old.items()))
    what = f" ({published_variant})" if published_variant else ""
    kept = (
        f"the variants Convert kept do not fit either ({'; '.join(tried)})"
        if tried
        else "the Convert commit kept no other variant (variants/*.tflite)"
    )
    raise RuntimeTooOld(
        f"{source}{what} needs TensorFlow Lite {need} or newer, but the {platform} app's "
        f"runtime is {target} (--{platform}-runtime); it would stop at 'Failed to construct "
        f"interpreter'. {kept[0].upper()}{kept[1:]}. Ways out: run Convert with --variant "
        f"float32 (or --keep-variants, so export can pick one); or upgrade the app's "
        f"TensorFlow Lite and pass --{platform}-runtime with its version"
    )
