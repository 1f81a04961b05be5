"""A small real flower classifier, built once per test run, for the mobile tests.

MobileNet v1 alpha 0.25 (ImageNet weights, offline in ~/.keras/models) embeds a few photos of
three classes from ``shared/data/flower_photos``; a logistic regression on those embeddings
becomes a Dense softmax head; ``tf.lite.TFLiteConverter`` turns backbone + head into the
``.tflite`` bytes the mobile step receives from Convert. No code from ``training`` or
``conversion`` is used, so these tests only break for reasons of their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.shared import built_once, shared_dir

CLASSES = ("daisy", "dandelion", "tulips")
TRAIN_PER_CLASS = 12
TEST_PER_CLASS = 20


@dataclass(frozen=True)
class FlowerModel:
    path: Path  # the converter's output, as Convert writes optimized_graph.lite
    content: bytes
    labels: tuple[str, ...]
    train: tuple[tuple[Path, str], ...]
    test: tuple[tuple[Path, str], ...]


@pytest.fixture(scope="session")
def flower_split() -> tuple[list[tuple[Path, str]], list[tuple[Path, str]]]:
    root = shared_dir() / "data" / "flower_photos"
    train, test = [], []
    for label in CLASSES:
        files = sorted((root / label).glob("*.jpg"))
        train += [(p, label) for p in files[:TRAIN_PER_CLASS]]
        test += [(p, label) for p in files[TRAIN_PER_CLASS : TRAIN_PER_CLASS + TEST_PER_CLASS]]
    return train, test


@pytest.fixture(scope="session")
def flower_model(flower_split) -> FlowerModel:
    """Built once per test run: the xdist workers share it (tests/shared.built_once)."""
    train, test = flower_split
    with built_once("mobile-flower-model") as folder:
        path = folder / "optimized_graph.lite"
        if not path.is_file():
            partial = path.with_suffix(".partial")
            partial.write_bytes(_convert_flower_model(train))
            partial.replace(path)
        content = path.read_bytes()
    return FlowerModel(path, content, CLASSES, tuple(train), tuple(test))


def _convert_flower_model(train: list[tuple[Path, str]]) -> bytes:
    import keras
    import tensorflow as tf
    from sklearn.linear_model import LogisticRegression

    from mobile.preprocess import PIPELINE, preprocess

    keras.utils.set_random_seed(0)
    backbone = keras.applications.MobileNet(
        input_shape=(224, 224, 3),
        alpha=0.25,
        weights="imagenet",
        include_top=False,
        pooling="avg",
    )
    x = np.stack([preprocess(path, PIPELINE) for path, _ in train])
    features = backbone.predict(x, batch_size=16, verbose=0)
    y = [CLASSES.index(label) for _, label in train]
    head = LogisticRegression(C=1.0, max_iter=2000).fit(features, y)

    inputs = keras.Input((224, 224, 3))
    dense = keras.layers.Dense(len(CLASSES), activation="softmax")
    model = keras.Model(inputs, dense(backbone(inputs)))
    dense.set_weights([head.coef_.T.astype(np.float32), head.intercept_.astype(np.float32)])
    return bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())


@pytest.fixture(scope="session")
def provenance():
    from mobile.metadata import AuditRef, CommitRef, Provenance

    return Provenance(
        model=CommitRef("Convert", "c" * 32),
        data=(CommitRef("flower_photos", "f" * 32), CommitRef("label_reference", "e" * 32)),
        audit=AuditRef("pass", "Audit", "a" * 32),
        architecture="mobilenet_0.25_224 float32",
    )


@pytest.fixture(scope="session")
def stamped(flower_model, provenance):
    """The flower model with its manifest embedded, as export writes it to graph.lite."""
    import datetime as dt

    from mobile.metadata import embed_manifest

    return embed_manifest(
        flower_model.content,
        provenance=provenance,
        labels=flower_model.labels,
        created=dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC),
        source=str(flower_model.path),
    )
