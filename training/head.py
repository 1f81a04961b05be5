"""The classifier on top of the embeddings, and the one-file model it becomes.

Two candidates are fitted on the training split; the Dense head replaces logistic regression
only if it is strictly more accurate on the validation split:

* multinomial logistic regression (scikit-learn, L-BFGS, C chosen on validation with ties
  going to C=1), whose
  weights are copied into a Keras ``Dense`` softmax layer, so the shipped head *is* the
  logistic regression that the accuracy bar compares against;
* a Keras ``Dense`` softmax with L2, trained with early stopping on validation loss, which
  also gives TensorBoard its per-epoch curves.

Both are deterministic for a given seed. TensorFlow is imported inside the functions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipelines.errors import TulipError

log = logging.getLogger(__name__)

DEFAULT_CS = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0)


class TrainingFailed(TulipError):
    """The data cannot train a classifier (too few classes or images); the message says why."""


@dataclass
class Head:
    """A softmax layer: ``probs = softmax(x @ kernel + bias)``."""

    kernel: np.ndarray  # (dim, n_classes)
    bias: np.ndarray  # (n_classes,)
    kind: str
    params: dict = field(default_factory=dict)
    candidates: list[dict] = field(default_factory=list)

    def logits(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, np.float64) @ self.kernel.astype(np.float64) + self.bias

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        z = self.logits(x)
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)


def log_loss(probs: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, 1.0))))


def accuracy(probs: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(probs.argmax(axis=1) == y)) if len(y) else float("nan")


def fit_logistic(
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    *,
    x_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    cs: tuple[float, ...] = DEFAULT_CS,
    c: float | None = None,
    max_iter: int = 3000,
) -> Head:
    """Multinomial logistic regression; ``c`` if given, else with validation data the C most
    accurate there, else C=1."""
    from sklearn.linear_model import LogisticRegression

    def fit(c: float) -> Head:
        lr = LogisticRegression(C=c, max_iter=max_iter, tol=1e-6)
        lr.fit(x, y)
        coef, intercept = lr.coef_, lr.intercept_
        kernel = np.zeros((x.shape[1], n_classes), np.float64)
        bias = np.zeros(n_classes, np.float64)
        present = lr.classes_
        if len(present) == 2:  # scikit-learn keeps one row for two classes: softmax of [0, z]
            kernel[:, present[1]] = coef[0]
            bias[present[1]] = intercept[0]
        else:
            kernel[:, present] = coef.T
            bias[present] = intercept
        return Head(
            kernel.astype(np.float32), bias.astype(np.float32), "logistic_regression", {"C": c}
        )

    if c is not None:
        return fit(c)
    if x_val is None or y_val is None or len(y_val) == 0:
        return fit(1.0)
    best: Head | None = None
    best_key = None
    candidates = []
    for candidate in cs:
        h = fit(candidate)
        p = h.predict_proba(x_val)
        row = {
            "C": candidate,
            "validation_loss": log_loss(p, y_val),
            "validation_accuracy": accuracy(p, y_val),
        }
        candidates.append(row)
        # Most accurate on validation; ties (common on small validation sets) go to the C
        # nearest 1, the usual default, rather than to whatever the noise favours.
        key = (-round(row["validation_accuracy"], 6), abs(np.log(candidate)))
        if best_key is None or key < best_key:
            best, best_key = h, key
    assert best is not None
    best.candidates = candidates
    return best


def fit_dense(
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    *,
    x_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    epochs: int = 200,
    l2: float = 1e-3,
    learning_rate: float = 1e-3,
    batch_size: int = 32,
    patience: int = 15,
    seed: int = 0,
    summaries: Path | None = None,
) -> Head:
    """A Keras Dense softmax with L2 and early stopping; logs loss/accuracy per epoch."""
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input((x.shape[1],), name="embedding")
    out = keras.layers.Dense(
        n_classes, activation="softmax", kernel_regularizer=keras.regularizers.L2(l2), name="head"
    )(inp)
    model = keras.Model(inp, out)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    has_val = x_val is not None and y_val is not None and len(y_val) > 0
    callbacks: list = []
    if has_val:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=patience, restore_best_weights=True
            )
        )
    if summaries is not None:
        callbacks.append(
            keras.callbacks.TensorBoard(log_dir=str(summaries), write_graph=False, profile_batch=0)
        )
    history = model.fit(
        x,
        y,
        validation_data=(x_val, y_val) if has_val else None,
        epochs=epochs,
        batch_size=batch_size,
        shuffle=True,
        verbose=0,
        callbacks=callbacks,
    )
    kernel, bias = model.get_layer("head").get_weights()
    epochs_run = len(history.history["loss"])
    return Head(
        kernel.astype(np.float32),
        bias.astype(np.float32),
        "dense",
        {"l2": l2, "learning_rate": learning_rate, "epochs_run": epochs_run, "max_epochs": epochs},
    )


def choose_head(lr_head: Head, dense_head: Head, x_val: np.ndarray, y_val: np.ndarray) -> Head:
    """Logistic regression unless the Dense head is strictly more accurate on validation."""
    if len(y_val) == 0:
        lr_head.params["chosen_because"] = "no validation images: logistic regression by default"
        return lr_head
    lr_p, dense_p = lr_head.predict_proba(x_val), dense_head.predict_proba(x_val)
    candidates = [
        {
            "kind": "logistic_regression",
            "validation_loss": log_loss(lr_p, y_val),
            "validation_accuracy": accuracy(lr_p, y_val),
            **lr_head.params,
        },
        {
            "kind": "dense",
            "validation_loss": log_loss(dense_p, y_val),
            "validation_accuracy": accuracy(dense_p, y_val),
        },
    ]
    better = candidates[1]["validation_accuracy"] > candidates[0]["validation_accuracy"] + 1e-9
    chosen = dense_head if better else lr_head
    chosen.params["chosen_because"] = (
        "more accurate on validation" if better else "dense head not more accurate on validation"
    )
    chosen.candidates = candidates + [
        {"kind": "logistic_regression", **c} for c in lr_head.candidates
    ]
    return chosen


def fit_head(
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    *,
    x_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    epochs: int = 200,
    seed: int = 0,
    summaries: Path | None = None,
    refit: bool = True,
) -> Head:
    """Both candidates fitted on (x, y), and the one ``choose_head`` prefers on validation;
    a chosen logistic regression is refitted on training + validation (``refit``)."""
    has_val = x_val is not None and y_val is not None and len(y_val) > 0
    lr_head = fit_logistic(x, y, n_classes, x_val=x_val, y_val=y_val)
    dense_head = fit_dense(
        x, y, n_classes, x_val=x_val, y_val=y_val, epochs=epochs, seed=seed, summaries=summaries
    )
    if not has_val:
        return choose_head(lr_head, dense_head, np.zeros((0, x.shape[1])), np.zeros(0, int))
    chosen = choose_head(lr_head, dense_head, x_val, y_val)
    if chosen.kind != "logistic_regression" or not refit:
        return chosen
    # Validation has done its job (choosing C and the kind of head); the convex fit is
    # deterministic, so refit it on training + validation images for 1/8 more data.
    c = chosen.params["C"]
    final = fit_logistic(
        np.concatenate([x, x_val]), np.concatenate([y, y_val]), n_classes, x_val=None, c=c
    )
    final.params = {**chosen.params, "refit_on": "train+validation"}
    final.candidates = chosen.candidates
    return final


def build_classifier(backbone, head: Head, *, labels: list[str]):
    """Backbone and head as one Keras model: normalised float NHWC in, softmax over labels out."""
    import keras

    inp = keras.Input(backbone.input_shape[1:], name="input")
    features = backbone(inp, training=False)
    dense = keras.layers.Dense(len(labels), activation="softmax", name="head")
    out = dense(features)
    dense.set_weights([head.kernel, head.bias])
    return keras.Model(inp, out, name="tulip_classifier")
