"""The ``colour_histogram`` backbone: a fixed colour featuriser for when no network weights exist.

Without ImageNet weights a MobileNet embeds noise (its pooled output barely varies between
images), so the offline demo falls back to this. It is a Keras layer with no weights, so it
goes through Embed, Train (histogram + the usual softmax head in one ``model.keras``), Convert
(TFLite, builtin ops only) and the mobile export exactly like a MobileNet backbone, with the
same input: the normalised float image ``(x - 127.5) / 127.5`` in [-1, 1].

What it computes, per image:

1. back to rounded 8-bit levels, and average-pool ``pool`` x ``pool`` pixels (224 -> 112:
   cheap, and a little denoising); exact in float32, so every runtime agrees on the cells;
2. RGB to HSV with plain arithmetic (max, min, select, divide): ``tf.image.rgb_to_hsv`` is a
   TensorFlow op LiteRT lacks, and these are all TFLite builtins;
3. a hard joint histogram of ``bins`` (hue, saturation, value) cells, written as one-hot
   memberships multiplied out with a matrix product over the pixels (no scatter, no int
   ops), twice: over the whole image and weighted towards the centre (a Gaussian of
   ``centre_sigma`` image widths), where the flower usually is;
4. each bin's share raised to ``power`` (0.25): this damps the large backdrop bins so the
   small, telling flower colours count, and a linear head on top separates classes well.

Choices were measured on generated flowers (``tulip.synth``, 120 per class) through the
demo's own audits; see ``bench/colour_histogram.py``. Hard cells beat soft (triangular)
ones there: soft cells make every two pictures of a similar backdrop look alike, so the
auditor's near-copy check (centred cosine >= 0.8, calibrated on MobileNet) flagged pictures
of different classes as copies; hard cells did not.

This module imports Keras at import time (the layer subclasses it): import it only from
functions that need it.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

ARCHITECTURE = "colour_histogram"
INPUT_SIZE = 224
DEFAULT_BINS = (8, 8, 8)
DEFAULT_POOL = 2
DEFAULT_CENTRE_SIGMA = 0.25
DEFAULT_POWER = 0.25
#: Added before flooring to a cell. From 8-bit levels pooled 2x2, values and their ratios are
#: fractions whose denominators are at most 3 * 1,020, so many land exactly on a cell edge
#: (v = 0.5, s = 1/2), where float rounding in Keras, LiteRT or a phone would pick the cell
#: at random. Shifted by less than the gap to the next such fraction (1/3,060), none does.
EDGE_OFFSET = 1.0 / 8192


def _centre_weights(side: int, sigma: float) -> np.ndarray:
    """(side,) Gaussian weights along one axis around the image centre, summing to 1; the 2-D
    weight of a pixel is the product of its row's and its column's."""
    axis = (np.arange(side, dtype=np.float64) + 0.5) / side - 0.5
    w = np.exp(-(axis**2) / (2 * sigma**2))
    return (w / w.sum()).astype(np.float32)


@keras.saving.register_keras_serializable(package="tulip", name="ColourHistogram")
class ColourHistogram(keras.layers.Layer):
    """Normalised float NHWC image in [-1, 1] -> joint HSV histograms (whole, centre-weighted).

    Output width: ``2 * prod(bins)`` (1,024 for the default 8x8x8).
    """

    #: Read by ``conversion.variants.int8_blocker``: Convert then skips int8 for this model.
    int8_blocker = (
        "its HSV arithmetic divides by values int8 rounds to zero and floors ratios to cells, "
        "which int8 cannot represent (LiteRT aborts running it); the float variants serve"
    )

    def __init__(
        self,
        bins: tuple[int, int, int] | list[int] = DEFAULT_BINS,
        pool: int = DEFAULT_POOL,
        centre_sigma: float = DEFAULT_CENTRE_SIGMA,
        power: float = DEFAULT_POWER,
        **kwargs,
    ):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        self.bins = tuple(int(b) for b in bins)
        if len(self.bins) != 3 or min(self.bins) < 1:
            raise ValueError(f"bins must be three positive counts (h, s, v), got {bins}")
        if pool < 1:
            raise ValueError(f"pool must be at least 1, got {pool}")
        if not centre_sigma > 0 or not power > 0:
            raise ValueError(
                f"centre_sigma and power must be positive, got {centre_sigma}, {power}"
            )
        self.pool = int(pool)
        self.centre_sigma = float(centre_sigma)
        self.power = float(power)

    @property
    def dim(self) -> int:
        return 2 * int(np.prod(self.bins))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.dim)

    def _membership(self, u, bins: int):
        """(n, p) values in [0, 1] -> (n, p, bins) one-hot cells, by float ops only."""
        cell = ops.floor(ops.clip(u * bins + EDGE_OFFSET, 0.0, bins - 0.5))
        centres = ops.convert_to_tensor(np.arange(bins, dtype=np.float32))
        return ops.cast(ops.equal(ops.expand_dims(cell, -1), centres), "float32")

    def call(self, inputs):
        # Back to the app's 8-bit levels: sums, differences, max and min of these are exact in
        # float32, so every runtime computes the same cells (see EDGE_OFFSET). iOS and Tulip
        # normalise level p to (p - 127.5) / 127.5, which comes back as p; Android's
        # (p - 128) / 128 comes back as p * 255/256, in (p - 1, p]: ceil(y - 0.001) is p for both.
        y = (ops.cast(inputs, "float32") + 1.0) * 127.5
        x = ops.clip(ops.ceil(y - 0.001), 0.0, 255.0)
        if self.pool > 1:
            x = ops.average_pool(x, self.pool, strides=self.pool, padding="valid")
        side_h, side_w = int(x.shape[1]), int(x.shape[2])
        pixels = side_h * side_w
        x = ops.reshape(x, (-1, pixels, 3))
        r, g, b = x[..., 0], x[..., 1], x[..., 2]
        v = ops.maximum(ops.maximum(r, g), b)
        chroma = v - ops.minimum(ops.minimum(r, g), b)
        s = chroma / ops.maximum(v, 1e-6)
        c = ops.maximum(chroma, 1e-6)
        # Hue in sixths of a turn; ties between channels give the same value either way.
        h = ops.where(
            ops.equal(v, r),
            (g - b) / c,
            ops.where(ops.equal(v, g), (b - r) / c + 2.0, (r - g) / c + 4.0),
        )
        h = ops.where(chroma > 0, h, 0.0) / 6.0
        h = ops.where(h < 0, h + 1.0, h)
        hb, sb, vb = self.bins
        hs = ops.expand_dims(self._membership(h, hb), -1) * ops.expand_dims(
            self._membership(s, sb), -2
        )
        hs = ops.reshape(hs, (-1, pixels, hb * sb))
        vm = self._membership(v * (1.0 / 255.0), vb)
        # Row weights times column weights, applied one after the other: two small constants
        # in the TFLite file instead of a table of every pixel's weight (50 KB at 112x112).
        rows = _centre_weights(side_h, self.centre_sigma).reshape(1, side_h, 1, 1)
        cols = _centre_weights(side_w, self.centre_sigma).reshape(1, 1, side_w, 1)
        centre = ops.reshape(
            ops.reshape(vm, (-1, side_h, side_w, vb)) * rows * cols, (-1, pixels, vb)
        )
        weighted = ops.concatenate([vm * (1.0 / pixels), centre], axis=-1)
        # (n, hs cells, pixels) @ (n, pixels, 2 * v cells): both histograms in one product
        joint = ops.matmul(ops.transpose(hs, (0, 2, 1)), weighted)
        joint = ops.reshape(joint, (-1, hb * sb, 2, vb))
        joint = ops.transpose(joint, (0, 2, 1, 3))
        hist = ops.reshape(joint, (-1, self.dim))
        return ops.power(ops.maximum(hist, 0.0), self.power)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "bins": list(self.bins),
            "pool": self.pool,
            "centre_sigma": self.centre_sigma,
            "power": self.power,
        }


def build(*, size: int = INPUT_SIZE, **options):
    """The backbone as a Keras model: normalised float ``size`` x ``size`` x 3 in, histograms out."""
    inp = keras.Input((size, size, 3), name="image")
    out = ColourHistogram(name="colour_histogram", **options)(inp)
    model = keras.Model(inp, out, name=ARCHITECTURE)
    model.trainable = False
    return model


def custom_objects() -> dict:
    """What ``keras.models.load_model`` needs to read a model with this layer in it."""
    return {"tulip>ColourHistogram": ColourHistogram, "ColourHistogram": ColourHistogram}
