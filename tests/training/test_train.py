"""The Train stage on real embeddings of a small flower slice with mobilenet_0.25_224."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from pipelines.records import EmbeddingRecord
from tests.training.flowers import (
    ARCH,
    BAD_REASONS,
    CLASSES,
    dirty_slice,
    embeddings_dir,
    fresh_dir,
    trained_model,
)
from training.head import TrainingFailed
from training.splits import split_of
from training.train import TrainOptions, train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def out():
    return trained_model()


@pytest.fixture(scope="module")
def metrics(out):
    return json.loads((out / "metrics.json").read_text())


def test_outputs_are_written(out):
    for name in ("model.keras", "retrained_labels.txt", "metrics.json", "splits.json"):
        assert (out / name).is_file(), name
    assert (out / "retrained_labels.txt").read_text().splitlines() == sorted(CLASSES)


def test_metrics_describe_accuracy_splits_and_data(metrics):
    assert metrics["architecture"] == ARCH
    assert metrics["labels"] == sorted(CLASSES)
    test = metrics["test"]
    assert 0.0 <= test["accuracy"] <= 1.0 and test["n"] == metrics["splits"]["sizes"]["test"]
    assert set(test["per_class"]) == set(CLASSES)
    cm = np.array(test["confusion_matrix"]["matrix"])
    assert cm.shape == (5, 5) and cm.sum() == test["n"]
    assert np.trace(cm) == round(test["accuracy"] * test["n"])
    assert sum(metrics["splits"]["sizes"].values()) == metrics["data"]["readable"] == 63
    assert metrics["data"]["unreadable"] == len(BAD_REASONS)
    assert metrics["data"]["images"] == 63 + len(BAD_REASONS)
    assert {f["path"] for f in metrics["data"]["unreadable_files"]} == set(BAD_REASONS)
    assert metrics["head"]["kind"] in ("logistic_regression", "dense")
    assert metrics["train"]["accuracy"] > 0.9  # a linear head fits 50 embeddings easily


def test_shipped_model_on_pixels_matches_the_head_on_embeddings(metrics):
    c = metrics["consistency"]
    assert c["checked"] > 0 and c["top1_agreement"] == 1.0
    assert c["max_probability_difference"] < 1e-3


def test_splits_follow_content_hashes(out):
    files = json.loads((out / "splits.json").read_text())["files"]
    assert len(files) == 63 and not set(BAD_REASONS) & set(files)
    for entry in files.values():
        assert entry["split"] == split_of(entry["sha256"])


def test_saved_model_takes_normalised_224_input_and_outputs_label_probabilities(out):
    import keras

    model = keras.models.load_model(out / "model.keras")
    assert tuple(model.input_shape) == (None, 224, 224, 3)
    assert tuple(model.output_shape) == (None, 5)
    p = np.asarray(model(np.zeros((1, 224, 224, 3), np.float32)))
    assert abs(p.sum() - 1) < 1e-5


def test_tensorboard_summaries_have_per_epoch_loss_and_accuracy(out):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for split in ("train", "validation"):
        acc = EventAccumulator(str(out / "training_summaries" / "head" / split))
        acc.Reload()
        tags = set(acc.Tags()["scalars"]) | set(acc.Tags().get("tensors", []))
        assert {"epoch_loss", "epoch_accuracy"} <= tags, tags


def test_training_is_deterministic(out, tmp_path):
    again = tmp_path / "again"
    train(embeddings_dir(), dirty_slice(), again, TrainOptions(seed=0))
    a = json.loads((out / "metrics.json").read_text())
    b = json.loads((again / "metrics.json").read_text())
    assert a["test"] == b["test"] and a["head"]["kind"] == b["head"]["kind"]


def test_fine_tuning_the_top_layers_works_when_asked(tmp_path):
    o = tmp_path / "ft"
    m = train(
        embeddings_dir(),
        dirty_slice(),
        o,
        TrainOptions(fine_tune_layers=2, fine_tune_epochs=1, epochs=20),
    )
    assert m["fine_tune"]["unfrozen_layers"] == 2 and m["fine_tune"]["epochs"] == 1
    assert (o / "model.keras").is_file() and m["test"]["n"] > 0
    assert (o / "training_summaries" / "fine_tune" / "train").is_dir()


def _embeddings_copy(tmp_path):
    d = tmp_path / "Embed"
    shutil.copytree(embeddings_dir(), d)
    return d


def test_a_class_of_one_image_still_trains(tmp_path):
    emb = _embeddings_copy(tmp_path)
    src = sorted((emb / "daisy").glob("*.jpg.json"))[0]
    r = EmbeddingRecord.from_json(src.read_bytes())
    (emb / "tiny").mkdir()
    tiny = EmbeddingRecord(**{**r.__dict__, "path": "/tiny/one.jpg", "label": "tiny"})
    (emb / "tiny" / "one.jpg.json").write_text(tiny.to_json())
    m = train(emb, dirty_slice(), tmp_path / "out", TrainOptions(epochs=20))
    assert "tiny" in m["labels"] and m["splits"]["per_class"]["train"]["tiny"] == 1


def test_one_class_fails_with_a_clear_message(tmp_path):
    emb = tmp_path / "Embed"
    shutil.copytree(embeddings_dir() / "roses", emb / "roses")
    with pytest.raises(TrainingFailed, match="at least two class folders"):
        train(emb, dirty_slice(), tmp_path / "out", TrainOptions())


def test_architecture_mismatch_is_refused(tmp_path):
    with pytest.raises(TrainingFailed, match=r"ARCHITECTURE=mobilenet_1\.0_224"):
        train(
            embeddings_dir(),
            dirty_slice(),
            tmp_path / "o",
            TrainOptions(architecture="mobilenet_1.0_224"),
        )


def test_stage_cli_reports_failure_as_last_stderr_line(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "training.train",
            "--embeddings",
            str(tmp_path / "nope"),
            "--images",
            str(tmp_path),
            "--out",
            str(fresh_dir("o")),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1].startswith("Train failed: no embeddings directory")
