"""Optional fine-tuning of the top backbone layers, on the images themselves.

Off by default: the head alone meets the accuracy bar and trains in seconds. When asked, the
top ``layers`` layers of the backbone are unfrozen (batch-norm statistics stay frozen, since
the backbone is always called in inference mode) and the whole classifier is trained with a
small learning rate on decoded training images. TensorFlow is imported inside the function.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from training.backbones import normalize
from training.head import TrainingFailed
from training.images import UnreadableImage, decode


def load_pixels(
    images: Path, repo_paths: Sequence[str], *, size: tuple[int, int]
) -> tuple[np.ndarray, list[int]]:
    """Decode the images of ``repo_paths`` under ``images``; returns pixels and the kept indices."""
    arrays, kept = [], []
    for i, rp in enumerate(repo_paths):
        try:
            arrays.append(decode(images / rp.lstrip("/"), size=size))
        except (UnreadableImage, OSError):
            continue
        kept.append(i)
    if not arrays:
        return np.zeros((0, size[1], size[0], 3), np.uint8), kept
    return np.stack(arrays), kept


def unfreeze_top(backbone, layers: int) -> int:
    """Make the top ``layers`` weight-bearing layers trainable; returns how many were."""
    backbone.trainable = True
    weighted = [layer for layer in backbone.layers if layer.weights]
    top = set(map(id, weighted[-layers:])) if layers > 0 else set()
    for layer in backbone.layers:
        layer.trainable = id(layer) in top
    return len(top)


def fine_tune(
    model,
    backbone,
    pixels: np.ndarray,
    y: np.ndarray,
    *,
    layers: int,
    val_pixels: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    epochs: int = 3,
    learning_rate: float = 1e-5,
    batch_size: int = 16,
    seed: int = 0,
    summaries: Path | None = None,
) -> dict:
    """Train ``model`` (backbone + head) in place; returns what was done, for metrics.json."""
    import keras
    import tensorflow as tf

    if len(pixels) == 0:
        raise TrainingFailed("fine-tuning needs the training images, but none could be decoded")
    keras.utils.set_random_seed(seed)
    unfrozen = unfreeze_top(backbone, layers)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )

    def dataset(px: np.ndarray, labels: np.ndarray, shuffle: bool):
        ds = tf.data.Dataset.from_tensor_slices((px, labels.astype(np.int64)))
        if shuffle:
            ds = ds.shuffle(len(px), seed=seed)
        return ds.batch(batch_size).map(lambda a, b: ((tf.cast(a, tf.float32) - 127.5) / 127.5, b))

    has_val = val_pixels is not None and y_val is not None and len(y_val) > 0
    callbacks = []
    if summaries is not None:
        callbacks.append(
            keras.callbacks.TensorBoard(log_dir=str(summaries), write_graph=False, profile_batch=0)
        )
    history = model.fit(
        dataset(pixels, y, True),
        validation_data=dataset(val_pixels, y_val, False) if has_val else None,
        epochs=epochs,
        shuffle=False,  # the dataset shuffles itself, with the seed
        verbose=0,
        callbacks=callbacks,
    )
    backbone.trainable = False
    return {
        "layers": layers,
        "unfrozen_layers": unfrozen,
        "epochs": epochs,
        "learning_rate": learning_rate,
        "images": len(pixels),
        "final_loss": float(history.history["loss"][-1]),
    }


def predict_images(model, pixels: np.ndarray, *, batch_size: int = 32) -> np.ndarray:
    """Softmax outputs of the full classifier on uint8 pixels."""
    if len(pixels) == 0:
        return np.zeros((0, model.output_shape[-1]), np.float32)
    out = [
        np.asarray(model(normalize(pixels[i : i + batch_size]), training=False))
        for i in range(0, len(pixels), batch_size)
    ]
    return np.concatenate(out).astype(np.float32)
