"""The provenance manifest inside the model: round trip, identical outputs, tamper detection."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import textwrap
import zipfile

import flatbuffers
import numpy as np
import pytest

from mobile import tflite_file
from mobile.errors import InvalidManifest, InvalidModelFile, LabelsMismatch, ManifestMissing
from mobile.labels import format_labels
from mobile.metadata import (
    LABELS_FILE_NAME,
    MANIFEST_METADATA_NAME,
    AuditRef,
    CommitRef,
    Provenance,
    embed_manifest,
    model_labels,
    read_manifest,
    verify,
)
from mobile.preprocess import ANDROID, preprocess


def _repack(model, labels) -> bytes:
    """What a third-party tool writes: the model re-serialised, metadata and labels kept."""
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    sink = io.BytesIO(bytes(builder.Output()))
    sink.seek(0, io.SEEK_END)
    with zipfile.ZipFile(sink, "a") as archive:
        archive.writestr(LABELS_FILE_NAME, format_labels(labels))
    return sink.getvalue()


def _run(content: bytes, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content, num_threads=1)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x[None])
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).copy()


def test_manifest_round_trips_from_a_file_alone(stamped, flower_model, provenance, tmp_path):
    phone_copy = tmp_path / "pulled_off_phone.lite"
    phone_copy.write_bytes(stamped.content)
    manifest = read_manifest(phone_copy)
    assert manifest == stamped.manifest
    assert manifest.model == provenance.model
    assert manifest.data == provenance.data
    assert manifest.audit == AuditRef("pass", "Audit", "a" * 32)
    assert manifest.labels == flower_model.labels
    assert manifest.created == "2024-05-01T12:00:00Z"
    assert manifest.architecture == "mobilenet_0.25_224 float32"
    assert manifest.tulip_version
    platforms = manifest.preprocessing["platforms"]
    assert manifest.preprocessing["size"] == [224, 224]
    assert manifest.preprocessing["channels"] == 3
    assert (platforms["android"]["mean"], platforms["android"]["std"]) == (128.0, 128.0)
    assert (platforms["ios"]["mean"], platforms["ios"]["std"]) == (127.5, 127.5)
    # The hashes tie the exported file to the converter's output the store holds.
    assert manifest.source_sha256 == hashlib.sha256(flower_model.content).hexdigest()
    original = tflite_file.inspect_model(flower_model.content)
    assert manifest.weights_sha256 == original.weights_sha256
    assert manifest.graph_sha256 == original.graph_sha256


def test_manifest_is_plain_json_in_a_named_buffer(stamped):
    model = tflite_file.load_model(stamped.content)
    raw = tflite_file.named_metadata(model, stamped.content, MANIFEST_METADATA_NAME)
    document = json.loads(raw)
    assert document["schema"] == "tulip.mobile-manifest/v1"
    assert set(document) >= {
        "model",
        "data",
        "audit",
        "labels",
        "preprocessing",
        "sha256",
        "tulip_version",
        "created",
    }
    assert set(document["sha256"]) == {"weights", "graph", "source"}


def test_stamped_model_gives_bit_identical_outputs(stamped, flower_model):
    for path, _ in flower_model.test[::10]:
        x = preprocess(path, ANDROID)
        before, after = _run(flower_model.content, x), _run(stamped.content, x)
        assert before.dtype == after.dtype == np.float32
        assert before.tobytes() == after.tobytes()


def test_verify_passes_an_untouched_export(stamped):
    result = verify(stamped.content)
    assert result.ok, result.problems
    assert result.weights_intact and result.graph_intact
    assert result.file_sha256 == stamped.sha256


def _weight_offset(content: bytes) -> int:
    """The file offset of a byte inside the largest constant tensor."""
    from ai_edge_litert import schema_py_generated as schema

    root = schema.Model.GetRootAs(content, 0)
    best = max(range(root.BuffersLength()), key=lambda i: root.Buffers(i).DataLength())
    buffer = root.Buffers(best)
    return buffer._tab.Vector(buffer._tab.Offset(4)) + buffer.DataLength() // 2


def test_verify_detects_a_flipped_weight_byte(stamped):
    tampered = bytearray(stamped.content)
    tampered[_weight_offset(stamped.content)] ^= 0x01
    result = verify(bytes(tampered))
    assert not result.ok
    assert not result.weights_intact
    assert result.graph_intact
    assert any("weights were modified" in p for p in result.problems)


def test_verify_detects_weights_rewritten_by_a_tool_that_keeps_metadata(stamped):
    """A model edited with the flatbuffer object API, manifest and labels carried over."""
    model = tflite_file.load_model(stamped.content)
    head = next(t for t in model.subgraphs[0].tensors if list(t.shape) == [3, 256])
    buffer = model.buffers[head.buffer]
    weights = np.frombuffer(np.asarray(buffer.data).tobytes(), np.float32) * np.float32(1.01)
    buffer.data = np.frombuffer(weights.tobytes(), np.uint8)
    edited = _repack(model, stamped.manifest.labels)
    assert read_manifest(edited) == stamped.manifest  # the manifest itself still reads fine
    result = verify(edited)
    assert not result.weights_intact
    assert not result.ok


def test_verify_detects_a_changed_graph(stamped):
    model = tflite_file.load_model(stamped.content)
    softmax = next(
        op
        for op in model.subgraphs[0].operators
        if op.builtinOptions is not None and hasattr(op.builtinOptions, "beta")
    )
    softmax.builtinOptions.beta = 2.0
    edited = _repack(model, stamped.manifest.labels)
    result = verify(edited)
    assert result.weights_intact
    assert not result.graph_intact
    assert any("graph" in p for p in result.problems)


def test_verify_detects_packed_labels_that_disagree(stamped):
    swapped = list(reversed(stamped.manifest.labels))
    edited = tflite_file.rewrite_with_metadata(
        stamped.content, {}, packed={LABELS_FILE_NAME: format_labels(swapped)}
    )
    result = verify(edited)
    assert any("packed labels.txt" in p for p in result.problems)


def test_truncated_export_is_an_invalid_file_not_a_bad_manifest(stamped, tmp_path):
    path = tmp_path / "graph.lite"
    path.write_bytes(stamped.content[: len(stamped.content) // 3])
    with pytest.raises(InvalidModelFile, match=str(path)):
        verify(path)
    with pytest.raises(InvalidModelFile):
        read_manifest(path)


def test_converter_output_has_no_manifest(flower_model):
    with pytest.raises(ManifestMissing, match="not exported by Tulip"):
        read_manifest(flower_model.path)
    assert model_labels(flower_model.path) is None


def test_garbage_manifest_is_reported(flower_model):
    bad = tflite_file.rewrite_with_metadata(
        flower_model.content, {MANIFEST_METADATA_NAME: b"{not json"}
    )
    with pytest.raises(InvalidManifest, match="not valid JSON"):
        read_manifest(bad)
    other = tflite_file.rewrite_with_metadata(
        flower_model.content, {MANIFEST_METADATA_NAME: b'{"schema": "tulip.mobile-manifest/v9"}'}
    )
    with pytest.raises(InvalidManifest, match="newer Tulip"):
        read_manifest(other)


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (["daisy", "dandelion"], "2 labels but the model has 3 outputs"),
        (["daisy", "daisy", "tulips"], "appears twice"),
        (["daisy", "", "tulips"], "blank"),
        (["daisy", "dande\nlion", "tulips"], "line break"),
    ],
)
def test_embed_refuses_labels_that_do_not_fit(flower_model, provenance, labels, message):
    with pytest.raises(LabelsMismatch, match=message):
        embed_manifest(flower_model.content, provenance=provenance, labels=labels)


def test_embed_refuses_non_tflite_bytes(provenance):
    with pytest.raises(InvalidModelFile):
        embed_manifest(b"\x00" * 100, provenance=provenance, labels=["a"])


def test_embed_refuses_an_unknown_verdict(flower_model):
    bad = Provenance(model=CommitRef("Convert", "c" * 32), audit=AuditRef("maybe"))
    with pytest.raises(InvalidManifest, match="verdict"):
        embed_manifest(flower_model.content, provenance=bad, labels=flower_model.labels)


def test_restamping_keeps_the_source_hash_and_forced_reason(stamped, flower_model):
    forced = Provenance(
        model=CommitRef("Convert", "d" * 32),
        audit=AuditRef("fail", "Audit", "b" * 32),
        override_reason="demo build; orchids reviewed by hand",
    )
    again = embed_manifest(stamped.content, provenance=forced, labels=flower_model.labels)
    assert again.manifest.source_sha256 == stamped.manifest.source_sha256
    assert again.manifest.override_reason == "demo build; orchids reviewed by hand"
    assert read_manifest(again.content).audit.verdict == "fail"
    assert verify(again.content).ok
    model = tflite_file.load_model(again.content)
    names = list(tflite_file.metadata_entries(model))
    assert names.count(MANIFEST_METADATA_NAME) == 1
    assert names.count(tflite_file.SUPPORT_METADATA_NAME) == 1


def test_android_metadata_names_labels_and_normalisation(stamped, flower_model):
    """TFLITE_METADATA as Android's MetadataExtractor / Task Library read it."""
    from mobile import tflite_metadata_schema as meta

    model = tflite_file.load_model(stamped.content)
    raw = tflite_file.named_metadata(model, stamped.content, tflite_file.SUPPORT_METADATA_NAME)
    assert raw[4:8] == b"M001"
    root = meta.ModelMetadataT.InitFromObj(meta.ModelMetadata.GetRootAs(raw, 0))
    assert root.minParserVersion == b"1.0.0"
    (subgraph,) = root.subgraphMetadata
    (image,) = subgraph.inputTensorMetadata
    (scores,) = subgraph.outputTensorMetadata
    (unit,) = image.processUnits
    assert list(unit.options.mean) == [128.0] and list(unit.options.std) == [128.0]
    assert image.content.contentProperties.colorSpace == meta.ColorSpaceType.RGB
    (labels_file,) = scores.associatedFiles
    assert labels_file.name == b"labels.txt"
    assert labels_file.type == meta.AssociatedFileType.TENSOR_AXIS_LABELS
    packed = tflite_file.packed_files(stamped.content)
    assert packed == {"labels.txt": format_labels(flower_model.labels)}


@pytest.mark.skipif(
    not os.environ.get("TULIP_TFLITE_SUPPORT_PYTHON"),
    reason="set TULIP_TFLITE_SUPPORT_PYTHON to a Python with tflite-support 0.4.4 (it cannot "
    "share a venv with TensorFlow 2.21) to check the metadata with Google's own reader",
)
def test_tflite_support_task_library_reads_the_metadata(stamped, flower_model, tmp_path):
    model_path = tmp_path / "graph.lite"
    model_path.write_bytes(stamped.content)
    image = flower_model.test[0][0]
    script = textwrap.dedent(
        f"""
        import json
        from tflite_support import metadata
        from tflite_support.task import core, processor, vision
        shown = metadata.MetadataDisplayer.with_model_file({str(model_path)!r})
        options = vision.ImageClassifierOptions(
            base_options=core.BaseOptions(file_name={str(model_path)!r}),
            classification_options=processor.ClassificationOptions(max_results=3))
        classifier = vision.ImageClassifier.create_from_options(options)
        result = classifier.classify(vision.TensorImage.create_from_file({str(image)!r}))
        print(json.dumps({{
            "files": shown.get_packed_associated_file_list(),
            "labels": shown.get_associated_file_buffer("labels.txt").decode(),
            "top": [c.category_name for c in result.classifications[0].categories],
        }}))
        """
    )
    done = subprocess.run(
        [os.environ["TULIP_TFLITE_SUPPORT_PYTHON"], "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["files"] == ["labels.txt"]
    assert found["labels"].split() == list(flower_model.labels)
    assert set(found["top"]) <= set(flower_model.labels) and found["top"]


def test_identify_says_intact_modified_or_no_manifest(stamped, flower_model):
    from mobile.metadata import identify

    intact = identify(stamped.content)
    assert intact.status == "intact"
    assert intact.source_sha256 == hashlib.sha256(flower_model.content).hexdigest()
    assert intact.manifest == stamped.manifest

    tampered = bytearray(stamped.content)
    tampered[_weight_offset(stamped.content)] ^= 0x80
    modified = identify(bytes(tampered))
    assert modified.status == "modified" and modified.manifest is not None

    bare = identify(flower_model.path)
    assert bare.status == "no-manifest"
    assert bare.source_sha256 == hashlib.sha256(flower_model.content).hexdigest()
    assert bare.weights_sha256 == intact.weights_sha256  # same weights, found either way

    garbled = tflite_file.rewrite_with_metadata(
        flower_model.content, {MANIFEST_METADATA_NAME: b"\xff"}
    )
    assert identify(garbled).status == "modified"
    json.dumps(intact.as_dict())
