"""What a ``.tflite`` file holds, read and rewritten without TensorFlow.

Answers: is this really a TFLite model, or truncated? What are its input and output tensors?
Which named metadata buffers and packed associated files does it carry? What are its content
fingerprints? It also rewrites a model with extra named metadata buffers and a zip of
associated files appended, which is the layout tflite-support's ``MetadataPopulator`` writes
and Android's ``MetadataExtractor`` reads.

Only ``flatbuffers`` and LiteRT's generated schema classes are used (no interpreter, no
TensorFlow), so a model pulled off a phone can be checked on any machine, quickly.

Fingerprints, defined so that adding or replacing metadata never changes them:

* ``weights_sha256``: sha256 over the constant data of every tensor that has some, in
  subgraph then tensor order. Each piece is ``b"<subgraph>/<tensor>:"``, its byte length as a
  little-endian uint64, then the bytes; the stream starts with ``b"tulip.weights/v1\\n"``.
  Buffer numbering and alignment do not enter it, metadata buffers are not tensor data, so it
  is the same for the converter's output and for the exported file.
* ``graph_sha256``: sha256 of a canonical JSON of the operator codes, subgraphs (tensors with
  their shapes, types and quantization, and whether they hold constant data; operators with
  their options) and signature defs. Fields at their schema default are left out, so a newer
  schema that only adds fields does not change it.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InvalidModelFile

TFLITE_FILE_IDENTIFIER = b"TFL3"
SUPPORT_METADATA_NAME = "TFLITE_METADATA"  # the name tflite-support and Android tooling read
SUPPORT_METADATA_IDENTIFIER = b"M001"
WEIGHTS_HASH_SCHEME = "tulip.weights/v1"
GRAPH_HASH_SCHEME = "tulip.graph/v1"
BUFFER_ALIGNMENT = 16  # the schema's force_align for Buffer.data

_TENSOR_TYPE_NAMES = {
    0: "float32",
    1: "float16",
    2: "int32",
    3: "uint8",
    4: "int64",
    5: "string",
    6: "bool",
    7: "int16",
    8: "complex64",
    9: "int8",
    10: "float64",
    11: "complex128",
    12: "uint64",
    13: "resource",
    14: "variant",
    15: "uint32",
    16: "uint16",
    17: "int4",
}


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: float | None = None
    zero_point: int | None = None


@dataclass(frozen=True)
class ModelInfo:
    """The parts of a model the export, the device check and the model card need."""

    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    metadata_names: tuple[str, ...]
    packed_files: tuple[str, ...]
    size_bytes: int
    weights_sha256: str
    graph_sha256: str

    @property
    def num_classes(self) -> int:
        """The number of scores in the first output (the last axis of its shape)."""
        return self.outputs[0].shape[-1] if self.outputs and self.outputs[0].shape else 0


def _schema():
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def read_model_file(path: Path | str) -> bytes:
    """The bytes of a model file, or ``InvalidModelFile`` naming the path when unreadable."""
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InvalidModelFile(
            f"{path}: no such file; give the path of a .tflite/.lite model"
        ) from None
    except IsADirectoryError:
        raise InvalidModelFile(f"{path} is a directory, not a .tflite/.lite model file") from None
    except OSError as exc:
        raise InvalidModelFile(f"{path} cannot be read: {exc.strerror or exc}") from exc


def load_model(data: bytes, *, source: str = "model"):
    """Parse and validate a TFLite flatbuffer into LiteRT's object API (``ModelT``).

    Raises ``InvalidModelFile`` naming ``source`` when the bytes are not a TFLite model, or are
    one that is truncated or damaged (any offset or index that points outside the file).
    """
    data = bytes(data)
    if len(data) < 8:
        raise InvalidModelFile(
            f"{source} is {len(data)} bytes long, too short to be a TensorFlow Lite model"
        )
    if data[4:8] != TFLITE_FILE_IDENTIFIER:
        raise InvalidModelFile(
            f"{source} is not a TensorFlow Lite model: it lacks the 'TFL3' file identifier "
            f"(starts with {data[:8]!r}{_format_hint(data)}); export the model with "
            "tf.lite.TFLiteConverter or take optimized_graph.lite from the Convert repo"
        )
    root = int.from_bytes(data[:4], "little")
    if root >= len(data):
        raise InvalidModelFile(_truncated(source, len(data), "its root table lies past the end"))
    schema = _schema()
    try:
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(data, 0))
        _check_indices(model, len(data))
    except InvalidModelFile:
        raise
    except Exception as exc:  # any out-of-range read of a damaged flatbuffer
        raise InvalidModelFile(
            _truncated(source, len(data), f"it refers to data past its end: {exc}")
        ) from exc
    _check_packed_files(data, model, source)
    return model


def _truncated(source: str, size: int, detail: str) -> str:
    return (
        f"{source} is a damaged or truncated TensorFlow Lite model ({size} bytes; {detail}); "
        "copy the file again from its source"
    )


def _format_hint(data: bytes) -> str:
    if data.startswith(b"PK"):
        return ", a zip archive"
    if data.lstrip()[:1] in (b"{", b"["):
        return ", which looks like JSON"
    if data[:1] == b"\x08" or data[:2] == b"\n\x0c":
        return ", which looks like a protobuf such as a frozen .pb graph"
    if data[:3] == b"\xff\xd8\xff" or data[:4] == b"\x89PNG":
        return ", an image"
    return ""


def _check_indices(model, size: int) -> None:
    """Every index into buffers, tensors and operator codes points at something."""
    buffers = model.buffers or []
    opcodes = model.operatorCodes or []
    if not model.subgraphs:
        raise InvalidModelFile("the model has no subgraph")
    for buffer in buffers:
        if buffer.offset and buffer.offset + buffer.size > size:
            raise InvalidModelFile("a weights buffer lies past the end of the file")
    for subgraph in model.subgraphs:
        tensors = subgraph.tensors or []
        for tensor in tensors:
            if tensor.buffer >= len(buffers):
                raise InvalidModelFile(f"tensor {tensor.name!r} names a missing buffer")
        for index in [*_ints(subgraph.inputs), *_ints(subgraph.outputs)]:
            if not 0 <= index < len(tensors):
                raise InvalidModelFile("a subgraph input or output names a missing tensor")
        for op in subgraph.operators or []:
            if op.opcodeIndex >= len(opcodes):
                raise InvalidModelFile("an operator names a missing operator code")
            for index in [*_ints(op.inputs), *_ints(op.outputs)]:
                if not -1 <= index < len(tensors):
                    raise InvalidModelFile("an operator names a missing tensor")
    for entry in model.metadata or []:
        if entry.buffer >= len(buffers):
            raise InvalidModelFile(f"metadata {_text(entry.name)!r} names a missing buffer")


def _ints(values) -> list[int]:
    return [] if values is None else [int(v) for v in values]


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value


def buffer_bytes(model, index: int, data: bytes) -> bytes:
    """The content of buffer ``index``, inline or (for >2 GB models) at an offset in ``data``."""
    buffer = model.buffers[index]
    if buffer.data is not None and len(buffer.data):
        return np.asarray(buffer.data, dtype=np.uint8).tobytes()
    if buffer.offset > 1 and buffer.size:
        return data[buffer.offset : buffer.offset + buffer.size]
    return b""


def metadata_entries(model) -> dict[str, int]:
    """Named metadata entries of the model, name -> buffer index (last one wins)."""
    return {_text(entry.name): int(entry.buffer) for entry in model.metadata or []}


def named_metadata(model, data: bytes, name: str) -> bytes | None:
    """The bytes of the metadata buffer called ``name``, or None when there is none."""
    index = metadata_entries(model).get(name)
    return None if index is None else buffer_bytes(model, index, data)


def packed_files(data: bytes) -> dict[str, bytes]:
    """Associated files packed as a zip after the flatbuffer (empty when there is none)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return {name: archive.read(name) for name in archive.namelist()}
    except (zipfile.BadZipFile, EOFError, ValueError):
        return {}


def support_metadata_files(model, data: bytes) -> list[str]:
    """Names of the associated files that the TFLITE_METADATA buffer says are packed."""
    raw = named_metadata(model, data, SUPPORT_METADATA_NAME)
    if not raw:
        return []
    from . import tflite_metadata_schema as meta

    root = meta.ModelMetadataT.InitFromObj(meta.ModelMetadata.GetRootAs(raw, 0))
    names = [f.name for f in root.associatedFiles or []]
    for subgraph in root.subgraphMetadata or []:
        for tensor in [
            *(subgraph.inputTensorMetadata or []),
            *(subgraph.outputTensorMetadata or []),
        ]:
            names += [f.name for f in tensor.associatedFiles or []]
    return [_text(name) for name in names]


def _check_packed_files(data: bytes, model, source: str) -> None:
    """A model whose TFLITE_METADATA names packed files must carry them, intact."""
    try:
        expected = support_metadata_files(model, data)
    except Exception as exc:
        raise InvalidModelFile(
            f"{source} has a damaged {SUPPORT_METADATA_NAME} buffer ({exc}); "
            "copy the file again from its source"
        ) from exc
    if not expected:
        return
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            bad = archive.testzip()
            names = set(archive.namelist())
    except (zipfile.BadZipFile, EOFError, ValueError):
        names, bad = set(), None
    missing = [name for name in expected if name not in names]
    if missing or bad:
        what = f"packed file {bad} is corrupt" if bad else f"packed file(s) {missing} are missing"
        raise InvalidModelFile(_truncated(source, len(data), what))


def inspect_model(data: bytes, *, source: str = "model") -> ModelInfo:
    """Validate ``data`` and describe its tensors, metadata and fingerprints."""
    model = load_model(data, source=source)
    subgraph = model.subgraphs[0]
    return ModelInfo(
        inputs=tuple(_tensor_info(subgraph.tensors[i]) for i in _ints(subgraph.inputs)),
        outputs=tuple(_tensor_info(subgraph.tensors[i]) for i in _ints(subgraph.outputs)),
        metadata_names=tuple(metadata_entries(model)),
        packed_files=tuple(packed_files(data)),
        size_bytes=len(data),
        weights_sha256=weights_sha256(model, data),
        graph_sha256=graph_sha256(model),
    )


def _tensor_info(tensor) -> TensorInfo:
    scale = zero_point = None
    q = tensor.quantization
    if q is not None and q.scale is not None and len(q.scale) == 1:
        scale = float(q.scale[0])
        zero_point = int(q.zeroPoint[0]) if q.zeroPoint is not None else 0
    return TensorInfo(
        name=_text(tensor.name),
        shape=tuple(_ints(tensor.shape)),
        dtype=_TENSOR_TYPE_NAMES.get(tensor.type, f"type{tensor.type}"),
        scale=scale,
        zero_point=zero_point,
    )


def weights_sha256(model, data: bytes) -> str:
    """See the module docstring: the tensors' constant data, independent of the layout."""
    digest = hashlib.sha256(WEIGHTS_HASH_SCHEME.encode() + b"\n")
    for s, subgraph in enumerate(model.subgraphs or []):
        for t, tensor in enumerate(subgraph.tensors or []):
            content = buffer_bytes(model, tensor.buffer, data)
            if content:
                digest.update(f"{s}/{t}:".encode() + len(content).to_bytes(8, "little"))
                digest.update(content)
    return digest.hexdigest()


def graph_sha256(model) -> str:
    """See the module docstring: operators, tensors and signatures, without the weights."""
    buffers = model.buffers or []

    def has_data(index: int) -> bool:
        b = buffers[index]
        return bool((b.data is not None and len(b.data)) or (b.offset > 1 and b.size))

    subgraphs = []
    for subgraph in model.subgraphs or []:
        canonical = _canonical(subgraph)
        canonical["tensors"] = [
            {**_canonical(t), "buffer": has_data(t.buffer)} for t in subgraph.tensors or []
        ]
        subgraphs.append(canonical)
    document = {
        "scheme": GRAPH_HASH_SCHEME,
        "version": model.version,
        "operator_codes": _canonical(model.operatorCodes or []),
        "subgraphs": subgraphs,
        "signature_defs": _canonical(model.signatureDefs or []),
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _is_default(value: Any) -> bool:
    if value is None or value is False:
        return True
    if isinstance(value, (int, float)) and value == 0:
        return True
    return isinstance(value, (bytes, str, list, tuple, np.ndarray)) and len(value) == 0


def _canonical(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, bytes):
        return _text(value)
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if hasattr(value, "__dict__"):
        return {
            key: _canonical(item)
            for key, item in sorted(vars(value).items())
            if not _is_default(item)
        }
    return value


def rewrite_with_metadata(
    data: bytes,
    metadata: Mapping[str, bytes | None],
    *,
    packed: Mapping[str, bytes] | None = None,
    source: str = "model",
) -> bytes:
    """``data`` with the named metadata buffers set (None removes one) and files packed.

    Existing entries of the same names are replaced; every other part of the model (tensors,
    weights, operators, signatures, the converter's own metadata) is kept. Any zip already
    appended to ``data`` is dropped and replaced by ``packed``. Weight buffers are aligned to
    16 bytes, as the schema asks, so the result can be memory-mapped on a device.
    """
    schema = _schema()
    model = load_model(data, source=source)
    buffers = [_AlignedBuffer.copy_of(model, i, data) for i in range(len(model.buffers or []))]
    model.buffers = buffers
    entries = list(model.metadata or [])
    for name, content in metadata.items():
        existing = [e for e in entries if _text(e.name) == name]
        for entry in existing:
            buffers[entry.buffer].data = None  # orphan, empty: costs a few bytes, keeps indices
        entries = [e for e in entries if _text(e.name) != name]
        if content is not None:
            buffer = _AlignedBuffer()
            buffer.data = bytes(content)
            buffers.append(buffer)
            entry = schema.MetadataT()
            entry.name = name
            entry.buffer = len(buffers) - 1
            entries.append(entry)
    model.metadata = entries
    builder = _flatbuffers().Builder(max(1024, len(data) + 4096))
    builder.Finish(model.Pack(builder), file_identifier=TFLITE_FILE_IDENTIFIER)
    output = bytes(builder.Output())
    if packed:
        sink = io.BytesIO()
        sink.write(output)
        # ZIP_STORED: Android's MetadataExtractor only reads uncompressed entries.
        with zipfile.ZipFile(sink, "a", compression=zipfile.ZIP_STORED) as archive:
            for name, content in packed.items():
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                archive.writestr(info, content)
        output = sink.getvalue()
    load_model(output, source=f"rewritten {source}")
    return output


def _flatbuffers():
    import flatbuffers

    return flatbuffers


class _AlignedBuffer:
    """A ``BufferT`` stand-in whose data vector is aligned to 16 bytes when packed.

    LiteRT's generated ``BufferT.Pack`` aligns a numpy vector to its item size (1 byte),
    ignoring the schema's ``force_align: 16``; the converter itself only guarantees 4.
    """

    def __init__(self) -> None:
        self.data: bytes | None = None
        self.offset = 0
        self.size = 0

    @classmethod
    def copy_of(cls, model, index: int, data: bytes) -> _AlignedBuffer:
        original = model.buffers[index]
        buffer = cls()
        if original.data is not None or (original.offset > 1 and original.size):
            buffer.data = buffer_bytes(model, index, data)
        return buffer

    def Pack(self, builder):  # named as in the generated code
        schema = _schema()
        vector = None
        if self.data is not None:
            builder.Prep(BUFFER_ALIGNMENT, len(self.data))
            vector = builder.CreateByteVector(self.data)
        schema.BufferStart(builder)
        if vector is not None:
            schema.BufferAddData(builder, vector)
        return schema.BufferEnd(builder)
