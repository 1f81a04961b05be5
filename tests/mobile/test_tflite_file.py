"""Reading .tflite files without TensorFlow: validation, shapes, fingerprints, rewriting."""

from __future__ import annotations

import io
import zipfile

import pytest

from mobile import tflite_file
from mobile.errors import InvalidModelFile


def test_inspect_reports_the_classifier_interface(flower_model):
    info = tflite_file.inspect_model(flower_model.content)
    assert [t.shape for t in info.inputs] == [(1, 224, 224, 3)]
    assert info.inputs[0].dtype == "float32"
    assert [t.shape for t in info.outputs] == [(1, len(flower_model.labels))]
    assert info.num_classes == len(flower_model.labels)
    assert info.size_bytes == len(flower_model.content)
    assert info.packed_files == ()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "0 bytes long"),
        (b"hello world, not a model", "lacks the 'TFL3' file identifier"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 64, "an image"),
        (b'{"model": "no"}' + b" " * 16, "looks like JSON"),
    ],
)
def test_not_tflite_is_refused_with_a_clear_error(tmp_path, content, expected):
    path = tmp_path / "graph.lite"
    path.write_bytes(content)
    with pytest.raises(InvalidModelFile) as err:
        tflite_file.load_model(tflite_file.read_model_file(path), source=str(path))
    assert str(path) in str(err.value)
    assert expected in str(err.value)


def test_a_zip_is_not_a_model(tmp_path):
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w") as archive:
        archive.writestr("graph.lite", b"x")
    with pytest.raises(InvalidModelFile, match="zip archive"):
        tflite_file.load_model(sink.getvalue(), source="upload.zip")


def test_missing_file_and_directory_are_named(tmp_path):
    with pytest.raises(InvalidModelFile, match="no such file"):
        tflite_file.read_model_file(tmp_path / "nope.lite")
    with pytest.raises(InvalidModelFile, match="is a directory"):
        tflite_file.read_model_file(tmp_path)


@pytest.mark.parametrize("keep", [0.999, 0.9, 0.5, 0.01])
def test_truncated_converter_output_is_detected(flower_model, keep):
    data = flower_model.content
    cut = data[: int(len(data) * keep)]
    with pytest.raises(InvalidModelFile, match="truncated") as err:
        tflite_file.load_model(cut, source="phone/graph.lite")
    assert "phone/graph.lite" in str(err.value)


@pytest.mark.parametrize("drop", [1, 20, 200, 5000, 400_000])
def test_truncated_stamped_model_is_detected(stamped, drop):
    """Cutting any tail off an exported file loses the packed labels.txt the metadata names."""
    with pytest.raises(InvalidModelFile, match="truncated"):
        tflite_file.load_model(stamped.content[:-drop], source="graph.lite")


def test_rewrite_keeps_fingerprints_and_aligns_buffers(flower_model):
    from ai_edge_litert import schema_py_generated as schema

    out = tflite_file.rewrite_with_metadata(
        flower_model.content, {"note": b"hello"}, packed={"extra.txt": b"x\n"}
    )
    before = tflite_file.inspect_model(flower_model.content)
    after = tflite_file.inspect_model(out)
    assert after.weights_sha256 == before.weights_sha256
    assert after.graph_sha256 == before.graph_sha256
    assert "note" in after.metadata_names
    assert set(before.metadata_names) <= set(after.metadata_names)  # converter's own kept
    assert after.packed_files == ("extra.txt",)
    model = tflite_file.load_model(out)
    assert tflite_file.named_metadata(model, out, "note") == b"hello"

    root = schema.Model.GetRootAs(out, 0)
    misaligned = []
    for i in range(root.BuffersLength()):
        buffer = root.Buffers(i)
        if buffer.DataLength():
            start = buffer._tab.Vector(buffer._tab.Offset(4))
            if start % tflite_file.BUFFER_ALIGNMENT:
                misaligned.append(i)
    assert misaligned == []


def test_replacing_and_removing_named_metadata(flower_model):
    once = tflite_file.rewrite_with_metadata(flower_model.content, {"note": b"one"})
    twice = tflite_file.rewrite_with_metadata(once, {"note": b"two"})
    model = tflite_file.load_model(twice)
    assert list(tflite_file.metadata_entries(model)).count("note") == 1
    assert tflite_file.named_metadata(model, twice, "note") == b"two"
    gone = tflite_file.rewrite_with_metadata(twice, {"note": None})
    assert tflite_file.named_metadata(tflite_file.load_model(gone), gone, "note") is None


def test_weights_fingerprint_changes_with_one_weight(flower_model):
    """The fingerprint covers every tensor's data: a one-bit change anywhere shows."""
    import numpy as np

    model = tflite_file.load_model(flower_model.content)
    baseline = tflite_file.weights_sha256(model, flower_model.content)
    weighted = [t for t in model.subgraphs[0].tensors if model.buffers[t.buffer].data is not None]
    last = model.buffers[weighted[-1].buffer]
    last.data = np.array(last.data, copy=True)
    last.data[0] ^= 1
    assert tflite_file.weights_sha256(model, flower_model.content) != baseline
    assert tflite_file.graph_sha256(model) == tflite_file.graph_sha256(
        tflite_file.load_model(flower_model.content)
    )
