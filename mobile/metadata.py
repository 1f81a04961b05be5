"""Provenance inside the model file: write it at export, read and check it anywhere later.

A Tulip-exported ``.tflite`` carries two metadata buffers, next to the converter's own:

* ``tulip_provenance``: a UTF-8 JSON manifest (schema ``tulip.mobile-manifest/v1``): the
  model commit, the data commits, the audit verdict and its commit, the labels in output
  order, each app's input preprocessing, the fingerprints of the weights and the graph, the
  sha256 of the converter's output it was made from, the Tulip version and the time.
  Reading it needs only this file: no store, no TensorFlow.
* ``TFLITE_METADATA``: a TFLite Metadata (schema 1.5, ``M001``) flatbuffer, as
  tflite-support's ``ImageClassifier`` metadata writer makes it: an RGB image input with the
  Android normalisation (mean 128, std 128), a probability output whose associated file
  ``labels.txt`` (``TENSOR_AXIS_LABELS``) is packed in a zip appended to the model. Android
  Studio's ML Model Binding, the TFLite Task Library and ``MetadataExtractor`` read this; the
  tensorflow-for-poets-2 apps themselves read neither buffer, only ``graph.lite`` and
  ``labels.txt`` from their assets.

The model's tensors, weights and operators are untouched, so the outputs are bit-identical.
``verify`` recomputes the fingerprints (see ``mobile.tflite_file``) and compares them with the
manifest: a file whose weights or graph were changed after export, or whose packed labels
disagree with the manifest, is reported as modified.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.layout import TFLITE_LABELS_FILE

from . import tflite_file
from .errors import InvalidManifest, LabelsMismatch, ManifestMissing, UnsupportedModel
from .labels import check_labels, format_labels, parse_labels
from .preprocess import PLATFORMS

MANIFEST_METADATA_NAME = "tulip_provenance"
MANIFEST_SCHEMA = "tulip.mobile-manifest/v1"
# the labels beside the model, in the apps' assets and packed in the .tflite: the name the
# seed's apps read, and Convert's (pipelines.layout.TFLITE_LABELS_FILE)
LABELS_FILE_NAME = TFLITE_LABELS_FILE.lstrip("/")
VERDICTS = ("pass", "warn", "fail")


@dataclass(frozen=True)
class CommitRef:
    repo: str
    commit: str

    def as_dict(self) -> dict[str, str]:
        return {"repo": self.repo, "commit": self.commit}


@dataclass(frozen=True)
class AuditRef:
    """The audit that gated the model; ``verdict`` is ``pass``, ``warn`` or ``fail``."""

    verdict: str
    repo: str | None = None
    commit: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"verdict": self.verdict, "repo": self.repo, "commit": self.commit}


@dataclass(frozen=True)
class Provenance:
    """What the caller knows about a model: where it came from and what vouched for it."""

    model: CommitRef
    data: tuple[CommitRef, ...] = ()
    audit: AuditRef | None = None
    architecture: str | None = None  # e.g. "mobilenet_0.25_224" and the variant, "float32"
    override_reason: str | None = None  # set when an export was forced past the gate


@dataclass(frozen=True)
class Manifest:
    model: CommitRef
    data: tuple[CommitRef, ...]
    audit: AuditRef | None
    labels: tuple[str, ...]
    preprocessing: dict[str, Any]
    weights_sha256: str
    graph_sha256: str
    source_sha256: str  # sha256 of the converter's output file (Convert's optimized_graph.lite)
    tulip_version: str
    created: str
    architecture: str | None = None
    override_reason: str | None = None
    schema: str = MANIFEST_SCHEMA

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "model": self.model.as_dict(),
            "data": [ref.as_dict() for ref in self.data],
            "audit": None if self.audit is None else self.audit.as_dict(),
            "labels": list(self.labels),
            "preprocessing": self.preprocessing,
            "sha256": {
                "weights": self.weights_sha256,
                "graph": self.graph_sha256,
                "source": self.source_sha256,
            },
            "architecture": self.architecture,
            "override_reason": self.override_reason,
            "tulip_version": self.tulip_version,
            "created": self.created,
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str = "manifest") -> Manifest:
        try:
            if d.get("schema") != MANIFEST_SCHEMA:
                raise InvalidManifest(
                    f"{source}: manifest schema {d.get('schema')!r} is not {MANIFEST_SCHEMA!r}; "
                    "a newer Tulip may be needed to read it"
                )
            audit = d.get("audit")
            sha = d["sha256"]
            if not isinstance(d["labels"], list) or not all(
                isinstance(label, str) for label in d["labels"]
            ):
                raise InvalidManifest(f"{source}: the manifest's labels are not a list of strings")
            return cls(
                model=CommitRef(d["model"]["repo"], d["model"]["commit"]),
                data=tuple(CommitRef(r["repo"], r["commit"]) for r in d.get("data") or []),
                audit=None
                if audit is None
                else AuditRef(audit["verdict"], audit.get("repo"), audit.get("commit")),
                labels=tuple(d["labels"]),
                preprocessing=dict(d.get("preprocessing") or {}),
                weights_sha256=sha["weights"],
                graph_sha256=sha["graph"],
                source_sha256=sha["source"],
                tulip_version=d.get("tulip_version", "unknown"),
                created=d.get("created", ""),
                architecture=d.get("architecture"),
                override_reason=d.get("override_reason"),
            )
        except InvalidManifest:
            raise
        except (KeyError, TypeError, AttributeError) as exc:
            raise InvalidManifest(
                f"{source}: the Tulip manifest lacks or garbles the field {exc}; "
                "the file was written by a different tool or edited by hand"
            ) from exc


@dataclass(frozen=True)
class StampedModel:
    """A model with its manifest embedded: write ``content`` as graph.lite."""

    content: bytes
    manifest: Manifest

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass(frozen=True)
class Verification:
    """What ``verify`` found: the manifest, the recomputed fingerprints, and any problem."""

    source: str
    manifest: Manifest
    file_sha256: str
    weights_sha256: str
    graph_sha256: str
    problems: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def weights_intact(self) -> bool:
        return self.weights_sha256 == self.manifest.weights_sha256

    @property
    def graph_intact(self) -> bool:
        return self.graph_sha256 == self.manifest.graph_sha256

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "ok": self.ok,
            "file_sha256": self.file_sha256,
            "weights_intact": self.weights_intact,
            "graph_intact": self.graph_intact,
            "problems": list(self.problems),
            "manifest": self.manifest.as_dict(),
        }


def _tulip_version() -> str:
    from pipelines import __version__

    return __version__


def preprocessing_description(
    size: tuple[int, int] = (224, 224), dtype: str = "float32"
) -> dict[str, Any]:
    """The manifest's ``preprocessing``: input size, type and each app's normalisation."""
    return {
        "size": list(size),
        "channels": 3,
        "dtype": dtype,
        "platforms": {
            name: {
                "mean": spec.mean,
                "std": spec.std,
                "resize": spec.resize,
                "channel_order": spec.channel_order,
            }
            for name, spec in PLATFORMS.items()
        },
    }


def _load(model: bytes | str | Path, source: str | None) -> tuple[bytes, str]:
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model), source or "model bytes"
    return tflite_file.read_model_file(model), source or str(model)


def check_app_classifier(info: tflite_file.ModelInfo, source: str) -> None:
    """The apps feed one (1, H, W, 3) image and read one (1, N) score vector."""
    if len(info.inputs) != 1 or len(info.outputs) != 1:
        raise UnsupportedModel(
            f"{source} has {len(info.inputs)} inputs and {len(info.outputs)} outputs; "
            "the apps expect an image classifier with one input and one output"
        )
    shape = info.inputs[0].shape
    if len(shape) != 4 or shape[-1] != 3:
        raise UnsupportedModel(f"{source}: input shape {list(shape)} is not [1, height, width, 3]")
    if len(info.outputs[0].shape) != 2:
        raise UnsupportedModel(
            f"{source}: output shape {list(info.outputs[0].shape)} is not [1, classes]"
        )


def embed_manifest(
    model_bytes: bytes,
    *,
    provenance: Provenance,
    labels: Sequence[str],
    created: _dt.datetime | None = None,
    source: str = "model",
) -> StampedModel:
    """``model_bytes`` (the converter's output) with the Tulip manifest and TFLITE_METADATA.

    Raises ``InvalidModelFile`` for bytes that are not a valid TFLite model,
    ``UnsupportedModel`` for a model the apps cannot run, and ``LabelsMismatch`` when the
    labels do not match the model's outputs one to one. A model that already carries a
    manifest is re-stamped; its ``source_sha256`` is kept.
    """
    model = tflite_file.load_model(model_bytes, source=source)
    info = tflite_file.inspect_model(model_bytes, source=source)
    check_app_classifier(info, source)
    labels = check_labels(labels, num_classes=info.num_classes, source=f"labels for {source}")
    if provenance.audit is not None and provenance.audit.verdict not in VERDICTS:
        raise InvalidManifest(
            f"audit verdict {provenance.audit.verdict!r} is not one of {VERDICTS}"
        )
    source_sha256 = hashlib.sha256(model_bytes).hexdigest()
    previous = tflite_file.named_metadata(model, model_bytes, MANIFEST_METADATA_NAME)
    if previous:  # re-stamping: keep the original source; a garbled old manifest is replaced
        with contextlib.suppress(InvalidManifest):
            source_sha256 = parse_manifest(previous, source).source_sha256
    when = (created or _dt.datetime.now(_dt.UTC)).astimezone(_dt.UTC)
    _, height, width, _ = info.inputs[0].shape
    manifest = Manifest(
        model=provenance.model,
        data=tuple(provenance.data),
        audit=provenance.audit,
        labels=tuple(labels),
        preprocessing=preprocessing_description((width, height), info.inputs[0].dtype),
        weights_sha256=info.weights_sha256,
        graph_sha256=info.graph_sha256,
        source_sha256=source_sha256,
        tulip_version=_tulip_version(),
        created=when.isoformat(timespec="seconds").replace("+00:00", "Z"),
        architecture=provenance.architecture,
        override_reason=provenance.override_reason,
    )
    support = support_metadata(manifest, info)
    content = tflite_file.rewrite_with_metadata(
        model_bytes,
        {
            MANIFEST_METADATA_NAME: manifest.to_json().encode("utf-8"),
            tflite_file.SUPPORT_METADATA_NAME: support,
        },
        packed={LABELS_FILE_NAME: format_labels(labels)},
        source=source,
    )
    return StampedModel(content=content, manifest=manifest)


def support_metadata(manifest: Manifest, info: tflite_file.ModelInfo) -> bytes:
    """The TFLITE_METADATA flatbuffer, laid out as tflite-support's ImageClassifier writer does.

    Only one normalisation fits in it; it carries Android's (mean 128, std 128), since
    Android tooling is what reads it. iOS's is in the Tulip manifest.
    """
    import flatbuffers

    from . import tflite_metadata_schema as meta

    android = PLATFORMS["android"]
    image = meta.TensorMetadataT()
    image.name = "image"
    image.description = (
        "Input image to be classified: RGB, "
        f"{info.inputs[0].shape[2]}x{info.inputs[0].shape[1]}, float (x - mean) / std."
    )
    image.content = meta.ContentT()
    image.content.contentPropertiesType = meta.ContentProperties.ImageProperties
    image.content.contentProperties = meta.ImagePropertiesT()
    image.content.contentProperties.colorSpace = meta.ColorSpaceType.RGB
    image.stats = meta.StatsT()
    if info.inputs[0].dtype == "float32":
        normalization = meta.ProcessUnitT()
        normalization.optionsType = meta.ProcessUnitOptions.NormalizationOptions
        normalization.options = meta.NormalizationOptionsT()
        normalization.options.mean = [android.mean]
        normalization.options.std = [android.std]
        image.processUnits = [normalization]
        image.stats.min = [(0.0 - android.mean) / android.std]
        image.stats.max = [(255.0 - android.mean) / android.std]
    else:
        image.stats.min = [0.0]
        image.stats.max = [255.0]

    scores = meta.TensorMetadataT()
    scores.name = "probability"
    scores.description = "Probabilities of the labels respectively."
    scores.content = meta.ContentT()
    scores.content.contentPropertiesType = meta.ContentProperties.FeatureProperties
    scores.content.contentProperties = meta.FeaturePropertiesT()
    scores.stats = meta.StatsT()
    scores.stats.min = [0.0]
    scores.stats.max = [1.0]
    labels_file = meta.AssociatedFileT()
    labels_file.name = LABELS_FILE_NAME
    labels_file.description = "Labels for categories that the model can recognize."
    labels_file.type = meta.AssociatedFileType.TENSOR_AXIS_LABELS
    scores.associatedFiles = [labels_file]

    subgraph = meta.SubGraphMetadataT()
    subgraph.inputTensorMetadata = [image]
    subgraph.outputTensorMetadata = [scores]

    root = meta.ModelMetadataT()
    root.name = manifest.architecture or "Tulip image classifier"
    root.description = (
        f"Identifies {len(manifest.labels)} classes. Exported by Tulip from "
        f"{manifest.model.repo}@{manifest.model.commit}; its provenance manifest is the "
        f"'{MANIFEST_METADATA_NAME}' metadata buffer of this file."
    )
    root.version = manifest.model.commit
    root.author = f"Tulip {manifest.tulip_version}"
    root.subgraphMetadata = [subgraph]
    root.minParserVersion = "1.0.0"  # no field used here is newer than schema 1.0.0
    builder = flatbuffers.Builder(1024)
    builder.Finish(root.Pack(builder), tflite_file.SUPPORT_METADATA_IDENTIFIER)
    return bytes(builder.Output())


def parse_manifest(raw: bytes, source: str) -> Manifest:
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidManifest(
            f"{source}: the '{MANIFEST_METADATA_NAME}' metadata is not valid JSON ({exc})"
        ) from exc
    if not isinstance(document, dict):
        raise InvalidManifest(
            f"{source}: the '{MANIFEST_METADATA_NAME}' metadata is not a JSON object"
        )
    return Manifest.from_dict(document, source=source)


def read_manifest(model: bytes | str | Path, *, source: str | None = None) -> Manifest:
    """The manifest embedded in a model file or its bytes. Needs no store and no TensorFlow.

    Raises ``InvalidModelFile`` (not TFLite, truncated), ``ManifestMissing`` (a TFLite model
    that Tulip did not export) or ``InvalidManifest``.
    """
    data, source = _load(model, source)
    parsed = tflite_file.load_model(data, source=source)
    raw = tflite_file.named_metadata(parsed, data, MANIFEST_METADATA_NAME)
    if raw is None:
        raise ManifestMissing(
            f"{source} is a TensorFlow Lite model but carries no Tulip manifest (no "
            f"'{MANIFEST_METADATA_NAME}' metadata): it was not exported by Tulip, or the "
            "metadata was stripped"
        )
    return parse_manifest(raw, source)


def verify(model: bytes | str | Path, *, source: str | None = None) -> Verification:
    """Check a Tulip-exported model against its own manifest.

    Raises as ``read_manifest`` does when there is no manifest to check against; otherwise
    returns a ``Verification`` whose ``problems`` say what was modified, if anything.
    """
    data, source = _load(model, source)
    manifest = read_manifest(data, source=source)
    info = tflite_file.inspect_model(data, source=source)
    problems: list[str] = []
    if info.weights_sha256 != manifest.weights_sha256:
        problems.append(
            "the weights were modified after export: their sha256 is "
            f"{info.weights_sha256[:12]}…, the manifest says {manifest.weights_sha256[:12]}…"
        )
    if info.graph_sha256 != manifest.graph_sha256:
        problems.append(
            "the graph (operators, tensor shapes or quantization) was modified after export"
        )
    if info.num_classes != len(manifest.labels):
        problems.append(
            f"the model has {info.num_classes} outputs but the manifest lists "
            f"{len(manifest.labels)} labels"
        )
    packed = tflite_file.packed_files(data).get(LABELS_FILE_NAME)
    if packed is not None:
        try:
            packed_labels = parse_labels(packed, source=f"{source}:{LABELS_FILE_NAME}")
        except LabelsMismatch as exc:
            problems.append(f"the packed {LABELS_FILE_NAME} is unreadable: {exc}")
        else:
            if tuple(packed_labels) != manifest.labels:
                problems.append(
                    f"the packed {LABELS_FILE_NAME} (read by Android tooling) differs from the "
                    "manifest's labels"
                )
    return Verification(
        source=source,
        manifest=manifest,
        file_sha256=hashlib.sha256(data).hexdigest(),
        weights_sha256=info.weights_sha256,
        graph_sha256=info.graph_sha256,
        problems=tuple(problems),
    )


def model_labels(model: bytes | str | Path, *, source: str | None = None) -> list[str] | None:
    """The labels a model file carries: its manifest's, else its packed labels.txt, else None."""
    data, source = _load(model, source)
    parsed = tflite_file.load_model(data, source=source)
    raw = tflite_file.named_metadata(parsed, data, MANIFEST_METADATA_NAME)
    if raw is not None:
        return list(parse_manifest(raw, source).labels)
    packed = tflite_file.packed_files(data).get(LABELS_FILE_NAME)
    if packed is not None:
        return parse_labels(packed, source=f"{source}:{LABELS_FILE_NAME}")
    return None


@dataclass(frozen=True)
class Identity:
    """What a model file says about itself, before any store is asked (``tulip identify``).

    ``status`` is ``intact`` (a Tulip export that matches its manifest), ``modified`` (a Tulip
    export changed since, or with a garbled manifest) or ``no-manifest`` (a TFLite model
    Tulip did not export, e.g. Convert's optimized_graph.lite copied by hand). To find it in
    a store, look up Convert outputs whose content sha256 is ``source_sha256`` (the
    manifest's, or the file's own for a file without manifest), or whose weights fingerprint
    is ``weights_sha256``.
    """

    source: str
    file_sha256: str
    weights_sha256: str
    graph_sha256: str
    manifest: Manifest | None
    problems: tuple[str, ...]
    # the oldest TensorFlow Lite runtime that loads it (the converter's min_runtime_version)
    min_runtime_version: str | None = None

    @property
    def status(self) -> str:
        if self.manifest is None and not self.problems:
            return "no-manifest"
        return "modified" if self.problems else "intact"

    @property
    def source_sha256(self) -> str:
        return self.manifest.source_sha256 if self.manifest else self.file_sha256

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "status": self.status,
            "file_sha256": self.file_sha256,
            "source_sha256": self.source_sha256,
            "weights_sha256": self.weights_sha256,
            "graph_sha256": self.graph_sha256,
            "min_runtime_version": self.min_runtime_version,
            "problems": list(self.problems),
            "manifest": None if self.manifest is None else self.manifest.as_dict(),
        }


def identify(model: bytes | str | Path, *, source: str | None = None) -> Identity:
    """Read and check a model file's provenance; raises only for a file that is not TFLite."""
    data, source = _load(model, source)
    info = tflite_file.inspect_model(data, source=source)
    file_sha256 = hashlib.sha256(data).hexdigest()
    from .runtime import required_runtime

    need = required_runtime(data, source=source)
    try:
        checked = verify(data, source=source)
    except ManifestMissing:
        return Identity(source, file_sha256, info.weights_sha256, info.graph_sha256, None, (), need)
    except InvalidManifest as exc:
        return Identity(
            source, file_sha256, info.weights_sha256, info.graph_sha256, None, (str(exc),), need
        )
    return Identity(
        source,
        file_sha256,
        info.weights_sha256,
        info.graph_sha256,
        checked.manifest,
        checked.problems,
        need,
    )
