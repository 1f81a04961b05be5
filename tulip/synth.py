"""Procedurally drawn flower photos, for when neither real photos nor network are at hand.

The generated set has the flower_photos layout (``<out>/<class>/<class>_<index>.jpg``) and is
deterministic: the same seed gives byte-identical files. Each class has its own look (petal
shape and count, colours, centre, pose), varied in position, scale, number of flowers, colour
within the class palette, background, lighting and focus, so that a classifier on image
embeddings has to learn the flower and not the backdrop.

``orchids`` is the seed story's mislabelled folder: it is drawn by the tulip generator, from a
different random stream, so its images are new tulips and not copies of the ``tulips`` class.
``lavender`` is an extra class that looks like none of the others (for "a genuinely new class").

Only Pillow and numpy are used; no TensorFlow.
"""

from __future__ import annotations

import colorsys
import functools
import hashlib
import io
import math
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from pipelines.errors import TulipError

__all__ = [
    "DEFAULT_CLASSES",
    "DRAWN_BY",
    "KINDS",
    "UnknownFlowerKind",
    "colour_histogram",
    "draw_flower",
    "generate",
    "image_stream",
]

KINDS: tuple[str, ...] = ("daisy", "dandelion", "roses", "sunflowers", "tulips", "lavender")
"""Every flower the generator can draw."""

DEFAULT_CLASSES: tuple[str, ...] = ("daisy", "dandelion", "roses", "sunflowers", "tulips")
"""The five classes of the TensorFlow flower_photos set."""

DRAWN_BY: dict[str, str] = {"orchids": "tulips"}
"""Class names drawn by another kind's generator: the seed story's orchids are tulips."""

_SUPERSAMPLE = 2  # draw at twice the size and box-filter down: cheap anti-aliasing
_TAU = 2 * math.pi


class UnknownFlowerKind(TulipError, ValueError):
    """A class name the generator cannot draw."""


def _resolve(kind: str) -> str:
    drawn_as = DRAWN_BY.get(kind, kind)
    if drawn_as not in KINDS:
        known = ", ".join([*KINDS, *DRAWN_BY])
        raise UnknownFlowerKind(f"unknown flower kind {kind!r}; known kinds: {known}")
    return drawn_as


# ----------------------------------------------------------------------------- colours


def _hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    """HSV in degrees/0-1/0-1 to an 8-bit RGB tuple, clamping s and v."""
    r, g, b = colorsys.hsv_to_rgb((h % 360) / 360, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))
    return int(r * 255 + 0.5), int(g * 255 + 0.5), int(b * 255 + 0.5)


def _colour(h: float, s: float, v: float) -> np.ndarray:
    return np.array(_hsv(h, s, v), dtype=np.float32)


def _shade(rgb: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    """Darker (factor < 1) or lighter towards white (factor > 1)."""
    if factor <= 1:
        return tuple(int(c * factor) for c in rgb)  # type: ignore[return-value]
    t = min(factor - 1, 1.0)
    return tuple(int(c + (255 - c) * t) for c in rgb)  # type: ignore[return-value]


# ----------------------------------------------------------------------------- geometry


class _Canvas:
    """An RGB image drawn at ``_SUPERSAMPLE`` times its final size, in final-pixel coordinates.

    Shapes are complex-number point arrays (x + iy), so rotating is a multiplication; a 2-D
    array is a stack of polygons, one per row.
    """

    def __init__(self, background: Image.Image):
        self.size = background.width // _SUPERSAMPLE
        self.image = background
        self.draw = ImageDraw.Draw(background)

    @staticmethod
    def _flat(points: np.ndarray) -> list:
        scaled = points * _SUPERSAMPLE
        xy = np.stack([scaled.real, scaled.imag], axis=-1)
        return xy.reshape(*points.shape[:-1], -1).tolist()

    def polygon(self, points: np.ndarray, fill: tuple[int, int, int]) -> None:
        self.draw.polygon(self._flat(points), fill=fill)

    def polygons(self, points: np.ndarray, fills: Sequence[tuple[int, int, int]]) -> None:
        for flat, fill in zip(self._flat(points), fills, strict=True):
            self.draw.polygon(flat, fill=fill)

    def line(
        self, points: np.ndarray, fill: tuple[int, int, int], width: float, *, smooth: bool = True
    ) -> None:
        """A polyline; ``smooth`` rounds its joints (costly when there are many)."""
        self.draw.line(
            self._flat(points),
            fill=fill,
            width=max(1, round(width * _SUPERSAMPLE)),
            joint="curve" if smooth else None,
        )

    def discs(self, centres: np.ndarray, radius: float, fills: Sequence) -> None:
        """Filled circles of one ``radius`` at each of ``centres``, one fill each."""
        r = radius * _SUPERSAMPLE
        for (x, y), fill in zip(self._flat(centres[:, None]), fills, strict=True):
            self.draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)


class _Pose:
    """Where one flower sits: centre, scale (pixels per unit), rotation and foreshortening.

    ``tilt`` < 1 squashes the flower along one axis, as a flower head seen at an angle.
    """

    def __init__(self, centre: complex, scale: float, angle: float, tilt: float, tilt_axis: float):
        self.centre = centre
        self.scale = scale
        self.tilt = tilt
        self._axis = complex(math.cos(tilt_axis), math.sin(tilt_axis))
        self._turn = complex(math.cos(angle), math.sin(angle))

    def __call__(self, local: np.ndarray) -> np.ndarray:
        # Rotate into the tilt frame, squash its imaginary axis, rotate back, then place.
        z = np.asarray(local) * (self._turn / self._axis)
        z = z.real + 1j * (z.imag * self.tilt)
        return self.centre + (self.scale * self._axis) * z


_UNIT_CIRCLE = np.exp(1j * np.linspace(0, _TAU, 32, endpoint=False))


def _petals(
    start: float | np.ndarray,
    end: float | np.ndarray,
    width: float | np.ndarray,
    angle: float | np.ndarray,
    *,
    tip: float = 1.0,
    n: int = 12,
) -> np.ndarray:
    """Petals along direction ``angle`` from radius ``start`` to ``end``, ``width`` at the widest.

    Every argument but ``tip`` may be an array (one petal per entry); the result has one
    polygon per row. ``tip`` > 1 makes a blunt, rounded end; < 1 a pointed one.
    """
    start, end, width, angle = (
        np.atleast_1d(np.asarray(a, dtype=np.float64))[:, None] for a in (start, end, width, angle)
    )
    t = _PROFILE_T[n]
    half = width / 2 * _profile(n, tip)
    x = start + (end - start) * t
    upper = x + 1j * half
    outline = np.concatenate([upper, np.conj(upper[:, ::-1])], axis=1)
    return outline * np.exp(1j * angle)


_PROFILE_T = {n: np.linspace(0.0, 1.0, n)[None, :] for n in range(4, 33)}


def _profile(n: int, tip: float) -> np.ndarray:
    t = _PROFILE_T[n]
    return np.sin(np.pi * t ** (0.55 * tip + 0.15)) ** (1 / max(tip, 0.35))


def _rotate(points: np.ndarray, angle: float) -> np.ndarray:
    return points * complex(math.cos(angle), math.sin(angle))


# ----------------------------------------------------------------------------- backgrounds


def _smooth_noise(rng: np.random.Generator, cells: tuple[int, int], size: int) -> np.ndarray:
    """Value noise in [0, 1]: random cells, softened at 4x their count, stretched to ``size``²."""
    low = Image.fromarray((rng.random(cells) * 255).astype(np.uint8), "L")
    soft = low.resize((cells[1] * 4, cells[0] * 4), Image.Resampling.BICUBIC)
    soft = soft.filter(ImageFilter.GaussianBlur(1.6))
    big = soft.resize((size, size), Image.Resampling.BICUBIC)
    values = np.asarray(big, dtype=np.float32)
    low_v, high_v = values.min(), values.max()
    return (values - low_v) / max(high_v - low_v, 1.0)


def _mix(a, b, t: np.ndarray) -> np.ndarray:
    """Blend colour or planar image ``a`` into ``b`` by the per-pixel weight ``t``.

    Images are channel-first (3, H, W): numpy broadcasts a (H, W) weight over a leading axis
    far faster than over a trailing axis of 3.
    """
    a = np.asarray(a, dtype=np.float32).reshape(3, -1, 1) if np.ndim(a) == 1 else a
    b = np.asarray(b, dtype=np.float32).reshape(3, -1, 1) if np.ndim(b) == 1 else b
    return a + (b - a) * t


def _to_image(planes: np.ndarray) -> Image.Image:
    """A channel-first float array to an 8-bit RGB image, clipping to [0, 255]."""
    channels = np.clip(planes, 0, 255).astype(np.uint8)
    return Image.merge("RGB", [Image.fromarray(c, "L") for c in channels])


def _background(rng: np.random.Generator, size: int) -> Image.Image:
    """A plausible out-of-focus backdrop: foliage, grass, sky, soil, wall or bokeh."""
    kind = rng.choice(
        ["foliage", "grass", "sky", "soil", "wall", "bokeh"], p=[0.3, 0.2, 0.15, 0.1, 0.1, 0.15]
    )
    coarse = _smooth_noise(rng, (int(rng.integers(3, 9)),) * 2, size)
    fine = _smooth_noise(rng, (int(rng.integers(12, 30)),) * 2, size)
    if kind == "foliage":
        dark = _colour(rng.uniform(85, 140), rng.uniform(0.5, 0.9), rng.uniform(0.1, 0.3))
        light = _colour(rng.uniform(70, 130), rng.uniform(0.4, 0.8), rng.uniform(0.4, 0.75))
        img = _mix(dark, light, np.clip(0.65 * coarse + 0.6 * fine - 0.25, 0, 1))
    elif kind == "grass":
        streaks = _smooth_noise(rng, (int(rng.integers(2, 5)), int(rng.integers(40, 90))), size)
        dark = _colour(rng.uniform(75, 120), rng.uniform(0.5, 0.9), rng.uniform(0.15, 0.35))
        light = _colour(rng.uniform(55, 110), rng.uniform(0.4, 0.8), rng.uniform(0.5, 0.85))
        img = _mix(dark, light, np.clip(0.7 * streaks + 0.4 * coarse - 0.1, 0, 1))
    elif kind == "sky":
        ramp = np.linspace(0, 1, size, dtype=np.float32)[:, None] * np.ones((1, size), np.float32)
        top = _colour(rng.uniform(200, 225), rng.uniform(0.45, 0.8), rng.uniform(0.6, 0.9))
        bottom = _colour(rng.uniform(190, 215), rng.uniform(0.15, 0.4), rng.uniform(0.85, 1))
        img = _mix(top, bottom, ramp)
        clouds = np.clip((coarse * 0.6 + fine * 0.5 - rng.uniform(0.55, 0.85)) * 3, 0, 1)
        img = _mix(img, (245.0, 247.0, 250.0), clouds)
    elif kind == "soil":
        dark = _colour(rng.uniform(15, 35), rng.uniform(0.4, 0.7), rng.uniform(0.12, 0.25))
        light = _colour(rng.uniform(20, 40), rng.uniform(0.3, 0.6), rng.uniform(0.35, 0.55))
        img = _mix(dark, light, np.clip(0.5 * coarse + 0.7 * fine - 0.2, 0, 1))
    elif kind == "wall":
        base = _colour(rng.uniform(0, 360), rng.uniform(0.0, 0.25), rng.uniform(0.45, 0.95))
        img = _mix(base * 0.8, base, coarse)
    else:  # bokeh: dark greenery with blurred bright discs
        dark = _colour(rng.uniform(80, 150), rng.uniform(0.5, 0.9), rng.uniform(0.06, 0.2))
        mid = _colour(rng.uniform(70, 140), rng.uniform(0.4, 0.8), rng.uniform(0.3, 0.5))
        img = _mix(dark, mid, coarse)
        layer = Image.new("L", (size // 4, size // 4), 0)
        draw = ImageDraw.Draw(layer)
        for _ in range(int(rng.integers(4, 14))):
            x, y = rng.uniform(0, size / 4, 2)
            r = rng.uniform(1.5, size / 22)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=int(rng.integers(90, 220)))
        spots = layer.filter(ImageFilter.GaussianBlur(1.2)).resize(
            (size, size), Image.Resampling.BICUBIC
        )
        tint = _colour(rng.uniform(40, 110), rng.uniform(0.1, 0.5), 1.0)
        img = _mix(img, tint, np.asarray(spots, dtype=np.float32) / 255 * 0.8)
    return _to_image(img)


def _foliage(canvas: _Canvas, rng: np.random.Generator, count: int) -> None:
    """Stray blades and leaves in front of the backdrop, behind the flowers."""
    if count == 0:
        return
    size = canvas.size
    bases = rng.uniform(0, size, count) + 1j * size * rng.uniform(0.9, 1.2, count)
    lengths = size * rng.uniform(0.25, 0.8, count)
    angles = -math.pi / 2 + rng.normal(0, 0.4, count)
    blades = _petals(0, lengths, lengths * rng.uniform(0.06, 0.2, count), angles, tip=0.6)
    fills = [
        _hsv(h, s, v)
        for h, s, v in zip(
            rng.uniform(75, 140, count),
            rng.uniform(0.45, 0.85, count),
            rng.uniform(0.2, 0.6, count),
            strict=True,
        )
    ]
    canvas.polygons(bases[:, None] + blades, fills)


def _stem(
    canvas: _Canvas, rng: np.random.Generator, top: complex, width: float, *, leaves: bool = True
) -> None:
    """A gently curved green stem from ``top`` down past the bottom edge, maybe with leaves."""
    size = canvas.size
    length = size * 1.3 - top.imag
    bend = rng.normal(0, 0.15) * length
    t = np.linspace(0, 1, 12)
    pts = top + 1j * length * t + bend * np.sin(t * math.pi / 2) ** 2
    green = _hsv(rng.uniform(80, 130), rng.uniform(0.45, 0.8), rng.uniform(0.3, 0.6))
    canvas.line(pts, green, width)
    count = int(rng.integers(0, 3)) if leaves else 0
    if count:
        at = pts[rng.integers(3, 11, count)]
        leaf_len = size * rng.uniform(0.1, 0.3, count)
        angles = -math.pi / 2 + rng.choice([-1.0, 1.0], count) * rng.uniform(0.5, 1.2, count)
        blades = _petals(0, leaf_len, leaf_len * rng.uniform(0.2, 0.4, count), angles, tip=0.7)
        fills = [_shade(green, f) for f in rng.uniform(0.8, 1.15, count)]
        canvas.polygons(at[:, None] + blades, fills)


# ----------------------------------------------------------------------------- flowers
#
# Each head drawer paints one flower of unit radius through ``pose`` onto ``canvas``.


def _ring(count: int, rng: np.random.Generator, *, jitter: float, offset: float) -> np.ndarray:
    """``count`` angles evenly round a circle from ``offset``, each nudged by ``jitter``."""
    return offset + _TAU * np.arange(count) / count + rng.normal(0, jitter, count)


def _daisy(canvas: _Canvas, rng: np.random.Generator, pose: _Pose) -> None:
    count = int(rng.integers(16, 34))
    disc_r = rng.uniform(0.2, 0.3)
    width = rng.uniform(0.1, 0.17) * min(1.0, 24 / count) * 1.3
    white = _hsv(rng.uniform(30, 60), rng.uniform(0.0, 0.08), rng.uniform(0.88, 1.0))
    if rng.random() < 0.15:  # a pink-tipped daisy now and then
        white = _hsv(rng.uniform(320, 350), rng.uniform(0.05, 0.2), rng.uniform(0.9, 1.0))
    shadow = _shade(white, rng.uniform(0.72, 0.85))
    offset = rng.uniform(0, _TAU)
    back = _ring(count, rng, jitter=0.04, offset=offset)
    canvas.polygons(
        pose(_petals(disc_r * 0.6, rng.uniform(0.85, 1.05, count), width, back, tip=1.4)),
        [shadow] * count,
    )
    front = _ring(count, rng, jitter=0.04, offset=offset + math.pi / count)
    lengths = rng.uniform(0.78, 0.97, count)
    canvas.polygons(pose(_petals(disc_r * 0.6, lengths, width, front, tip=1.4)), [white] * count)
    canvas.polygons(
        pose(_petals(disc_r, lengths * 0.9, width * 0.25, front, n=6)), [_shade(white, 0.9)] * count
    )
    yellow = _hsv(rng.uniform(42, 54), rng.uniform(0.8, 1.0), rng.uniform(0.85, 1.0))
    canvas.polygon(pose(_UNIT_CIRCLE * disc_r), _shade(yellow, 0.75))
    canvas.polygon(pose(_UNIT_CIRCLE * disc_r * 0.85), yellow)
    dots = int(18 * disc_r / 0.25)
    r = disc_r * 0.8 * np.sqrt(rng.random(dots))
    centres = pose(r * np.exp(1j * rng.uniform(0, _TAU, dots)))
    fills = [_shade(yellow, f) for f in rng.uniform(0.7, 1.1, dots)]
    canvas.discs(centres, disc_r * 0.09 * pose.scale, fills)


def _dandelion(canvas: _Canvas, rng: np.random.Generator, pose: _Pose) -> None:
    if rng.random() < 0.2:
        _dandelion_clock(canvas, rng, pose)
        return
    hue = rng.uniform(50, 57)
    rings = int(rng.integers(5, 8))
    for ring in range(rings):
        depth = ring / (rings - 1)  # 0 outermost, 1 innermost
        radius = 1.0 - 0.8 * depth
        count = int(rng.integers(26, 40) * (1 - 0.45 * depth))
        angles = _ring(count, rng, jitter=0.06, offset=rng.uniform(0, _TAU))
        straps = _petals(
            0.0,
            radius * rng.uniform(0.85, 1.05, count),
            rng.uniform(0.07, 0.11, count),
            angles,
            tip=2.4,
            n=8,
        )
        colour = _hsv(hue - 6 * depth, rng.uniform(0.85, 1.0), 0.98 - 0.2 * depth)
        dark = _shade(colour, 0.7)
        canvas.polygons(
            pose(straps), [dark if (k + ring) % 3 == 0 else colour for k in range(count)]
        )
    canvas.polygon(pose(_UNIT_CIRCLE * 0.12), _hsv(hue - 12, 1.0, 0.75))


def _dandelion_clock(canvas: _Canvas, rng: np.random.Generator, pose: _Pose) -> None:
    """The white seed head: a translucent sphere of radial threads ending in tufts."""
    count = int(rng.integers(90, 160))
    tips = pose(rng.uniform(0.75, 1.0, count) * np.exp(1j * rng.uniform(0, _TAU, count)))
    grey = int(rng.integers(200, 250))
    hub = pose(np.array([0j]))
    thread = (grey, grey, grey - 5)
    width = max(0.35, pose.scale * 0.012)
    # One polyline out and back along every thread: hub, tip, hub, tip, ...
    spokes = np.stack([np.broadcast_to(hub, tips.shape), tips], axis=1).ravel()
    canvas.line(spokes, thread, width, smooth=False)
    canvas.discs(tips, max(0.8, pose.scale * 0.05), [(grey + 5, grey + 5, grey)] * count)
    canvas.polygon(pose(_UNIT_CIRCLE * 0.1), _hsv(rng.uniform(25, 40), 0.5, 0.45))


def _rose(canvas: _Canvas, rng: np.random.Generator, pose: _Pose) -> None:
    palette = rng.choice(
        ["red", "crimson", "pink", "magenta", "coral"], p=[0.35, 0.2, 0.25, 0.1, 0.1]
    )
    hue, sat, val = {
        "red": (rng.uniform(352, 362), rng.uniform(0.85, 1.0), rng.uniform(0.65, 0.9)),
        "crimson": (rng.uniform(340, 352), rng.uniform(0.8, 1.0), rng.uniform(0.45, 0.7)),
        "pink": (rng.uniform(335, 355), rng.uniform(0.35, 0.6), rng.uniform(0.85, 1.0)),
        "magenta": (rng.uniform(318, 335), rng.uniform(0.6, 0.85), rng.uniform(0.7, 0.9)),
        "coral": (rng.uniform(5, 15), rng.uniform(0.55, 0.75), rng.uniform(0.85, 1.0)),
    }[str(palette)]
    layers = int(rng.integers(4, 6))
    offset = rng.uniform(0, _TAU)
    for layer in range(layers):
        depth = layer / layers
        radius = 1.0 - 0.78 * depth
        count = int(rng.integers(5, 8)) if layer < 2 else int(rng.integers(3, 6))
        light = _hsv(hue, sat * (0.85 + 0.15 * depth), val * (1.0 - 0.3 * depth))
        shadow = _hsv(hue, min(1.0, sat * 1.1), val * (0.55 - 0.25 * depth))
        angles = _ring(count, rng, jitter=0.1, offset=offset + layer * 2.4)
        outer = _petals(0.0, radius, radius * rng.uniform(0.9, 1.25, count), angles, tip=3.0)
        # Each petal's inner face falls into shadow under the next layer's edge.
        inner = _petals(0.0, radius * 0.78, radius * 0.7, angles + 0.15, tip=3.0, n=10)
        for k in range(count):
            canvas.polygon(pose(outer[k]), light)
            canvas.polygon(pose(inner[k]), shadow)
    # A tight spiral of curled petal edges in the heart of the bloom.
    turns = rng.uniform(1.8, 3.0)
    theta = np.linspace(0, turns * _TAU, 40)
    spiral = (0.25 * theta / theta[-1]) * np.exp(1j * (theta + offset))
    canvas.polygon(pose(_UNIT_CIRCLE * 0.27), _hsv(hue, sat, val * 0.85))
    canvas.line(pose(spiral), _hsv(hue, min(1.0, sat * 1.1), val * 0.35), pose.scale * 0.035)


def _sunflower(canvas: _Canvas, rng: np.random.Generator, pose: _Pose) -> None:
    disc_r = rng.uniform(0.42, 0.55)
    count = int(rng.integers(18, 32))
    hue = rng.uniform(36, 45)
    offset = rng.uniform(0, _TAU)
    for layer in (0, 1):
        colour = _hsv(hue - 4 * (1 - layer), rng.uniform(0.85, 1.0), 0.8 + 0.18 * layer)
        angles = _ring(count, rng, jitter=0.05, offset=offset + layer * math.pi / count)
        lengths = rng.uniform(0.88, 1.05, count) * (0.95 if layer else 1.0)
        widths = (1 - disc_r) * rng.uniform(0.45, 0.6, count)
        petals = _petals(disc_r * 0.8, lengths, widths, angles, tip=0.55)
        canvas.polygons(pose(petals), [colour] * count)
    brown = _hsv(rng.uniform(18, 32), rng.uniform(0.6, 0.85), rng.uniform(0.18, 0.32))
    canvas.polygon(pose(_UNIT_CIRCLE * disc_r), _shade(brown, 0.7))
    canvas.polygon(pose(_UNIT_CIRCLE * disc_r * 0.93), brown)
    # Seeds on a Fermat spiral, the sunflower's phyllotaxis.
    seeds = 70
    k = np.arange(1, seeds + 1)
    r = disc_r * 0.9 * np.sqrt(k / seeds)
    centres = pose(r * np.exp(1j * (k * 2.39996 + offset)))
    fills = [_shade(brown, f) for f in rng.uniform(0.5, 1.25, seeds)]
    canvas.discs(centres, disc_r * 0.07 * pose.scale, fills)
    if rng.random() < 0.5:  # green-brown eye in the middle of a young head
        canvas.polygon(pose(_UNIT_CIRCLE * disc_r * 0.3), _hsv(60, 0.5, 0.3))


def _tulip(canvas: _Canvas, rng: np.random.Generator, pose: _Pose) -> None:
    """A closed cup seen from the side: back petals, then overlapping front petals."""
    palette = rng.choice(
        ["red", "orange", "yellow", "pink", "purple", "white", "flame"],
        p=[0.2, 0.15, 0.17, 0.15, 0.15, 0.08, 0.1],
    )
    hue, sat, val = {
        "red": (rng.uniform(355, 368), rng.uniform(0.8, 1.0), rng.uniform(0.75, 0.95)),
        "orange": (rng.uniform(15, 30), rng.uniform(0.8, 1.0), rng.uniform(0.9, 1.0)),
        "yellow": (rng.uniform(46, 56), rng.uniform(0.75, 0.95), rng.uniform(0.9, 1.0)),
        "pink": (rng.uniform(330, 350), rng.uniform(0.4, 0.7), rng.uniform(0.85, 1.0)),
        "purple": (rng.uniform(270, 300), rng.uniform(0.5, 0.8), rng.uniform(0.45, 0.75)),
        "white": (rng.uniform(40, 60), rng.uniform(0.03, 0.12), rng.uniform(0.9, 1.0)),
        "flame": (rng.uniform(0, 12), rng.uniform(0.85, 1.0), rng.uniform(0.85, 1.0)),
    }[str(palette)]
    body = _hsv(hue, sat, val)
    edge = _hsv(50, 0.9, 1.0) if palette == "flame" else _shade(body, 1.25)
    shadow = _hsv(hue, min(1.0, sat * 1.05), val * 0.6)
    up = -1j  # local "up" in image coordinates
    petals = int(rng.integers(3, 7))
    width = rng.uniform(0.5, 0.68)
    height = rng.uniform(1.15, 1.45)
    # Cup base: a rounded bowl all petals grow out of.
    half = np.exp(1j * np.linspace(0, math.pi, 16))  # the lower half of a circle
    bowl = width * (0.9 * half.real + 0.55j * half.imag) + 0.05j
    canvas.polygon(pose(bowl), shadow)
    backs = max(1, petals // 2)
    leans = (np.arange(backs) - (backs - 1) / 2) * 0.35 + rng.normal(0, 0.06, backs)
    back = _petals(0.0, height * 0.95, width * 1.15, leans, tip=rng.uniform(1.3, 2.6), n=14)
    canvas.polygons(pose(back * up + 0.2j), [shadow] * backs)
    fronts = petals - backs
    slot = np.arange(fronts) - (fronts - 1) / 2
    leans = slot * rng.uniform(0.12, 0.3) + rng.normal(0, 0.05, fronts)
    shift = (0.3j + slot * rng.uniform(0.2, 0.3))[:, None]
    outer = _petals(
        0.0, height, width * rng.uniform(1.1, 1.35, fronts), leans, tip=rng.uniform(1.3, 2.6), n=14
    )
    inner = _petals(0.0, height * 0.85, width * 0.95, leans, tip=1.8, n=14)
    for i in range(fronts):
        canvas.polygon(pose(outer[i] * up + shift[i]), edge)
        canvas.polygon(pose(inner[i] * up + shift[i]), body if i % 2 == 0 else _shade(body, 0.88))
    # A highlight down the middle of the front petal.
    streak = _petals(0.0, height * 0.7, width * 0.18, 0.0, n=8)[0] * up + 0.25j
    canvas.polygon(pose(streak), _shade(body, 1.35 if val < 0.9 else 1.12))


def _lavender(canvas: _Canvas, rng: np.random.Generator, pose: _Pose) -> None:
    """A spike of small purple florets: whorls getting smaller towards the top."""
    hue = rng.uniform(255, 285)
    whorls = int(rng.integers(7, 12))
    for i in range(whorls):
        t = i / (whorls - 1)
        spread = 0.28 * (1 - 0.6 * t)
        n = int(rng.integers(4, 7))
        heights = 1.0 - 2.0 * t + rng.normal(0, 0.05, n)
        centres = pose(rng.uniform(-spread, spread, n) + 1j * heights)
        fills = [
            _hsv(hue + rng.normal(0, 6), rng.uniform(0.35, 0.7), rng.uniform(0.45, 0.85))
            for _ in range(n)
        ]
        canvas.discs(centres, pose.scale * 0.11 * (1 - 0.4 * t), fills)


_HEADS: dict[str, Callable[[_Canvas, np.random.Generator, _Pose], None]] = {
    "daisy": _daisy,
    "dandelion": _dandelion,
    "roses": _rose,
    "sunflowers": _sunflower,
    "tulips": _tulip,
    "lavender": _lavender,
}

# How each kind is usually photographed: (head size range as a fraction of the image,
# extra flowers range, chance of a visible stem, most foreshortening allowed).
_FRAMING: dict[str, tuple[tuple[float, float], tuple[int, int], float, float]] = {
    "daisy": ((0.16, 0.42), (0, 5), 0.5, 0.5),
    "dandelion": ((0.14, 0.36), (0, 4), 0.6, 0.55),
    "roses": ((0.2, 0.45), (0, 3), 0.3, 0.7),
    "sunflowers": ((0.2, 0.48), (0, 3), 0.4, 0.55),
    "tulips": ((0.16, 0.34), (0, 4), 1.0, 0.85),
    "lavender": ((0.12, 0.3), (2, 7), 1.0, 1.0),
}


def _place_flowers(canvas: _Canvas, rng: np.random.Generator, kind: str) -> None:
    size = canvas.size
    (lo, hi), (more_lo, more_hi), stem_chance, min_tilt = _FRAMING[kind]
    upright = kind in ("tulips", "lavender")
    extra = int(rng.integers(more_lo, more_hi + 1))
    heads = []
    for i in range(extra + 1):
        main = i == extra  # the hero flower is drawn last, on top
        radius = size * rng.uniform(lo, hi) * (1.0 if main else rng.uniform(0.45, 0.85))
        spread = 0.18 if main else 0.5
        centre = complex(*(size * (0.5 + rng.uniform(-spread, spread, 2))))
        if upright:
            angle = rng.normal(0, 0.2)
            tilt, axis = rng.uniform(min_tilt, 1.0), 0.0
        else:
            angle = rng.uniform(0, _TAU)
            tilt, axis = rng.uniform(min_tilt, 1.0), rng.uniform(0, _TAU)
        heads.append(_Pose(centre, radius, angle, tilt, axis))
    heads.sort(key=lambda p: p.scale)
    draw = _HEADS[kind]
    for pose in heads:
        if upright or rng.random() < stem_chance:
            base = pose(np.array([0.3j if upright else 0j]))[0]
            width = pose.scale * (0.09 if kind == "tulips" else 0.05)
            _stem(canvas, rng, base, max(1.0, width), leaves=kind != "lavender")
        draw(canvas, rng, pose)


# ----------------------------------------------------------------------------- photo finish


@functools.lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates centred on the image, in units of its side: x, y in [-0.5, 0.5)."""
    axis = np.arange(size, dtype=np.float32) / size - 0.5
    return axis[None, :], axis[:, None]


@functools.lru_cache(maxsize=8)
def _grain(size: int) -> np.ndarray:
    """A fixed field of sensor noise, twice the image side; each photo crops it at random."""
    fixed = np.random.default_rng(20240229)
    return fixed.standard_normal((3, 2 * size, 2 * size), dtype=np.float32)


def _develop(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Lighting, white balance, vignette, contrast, sensor noise and focus, as a camera adds."""
    if rng.random() < 0.25:
        image = image.filter(ImageFilter.BoxBlur(rng.uniform(0.5, 1.5)))
    side = image.width
    planes = np.asarray(image).transpose(2, 0, 1).astype(np.float32)
    xs, ys = _grid(side)
    direction = rng.uniform(0, _TAU)
    light = 1 + rng.uniform(0, 0.3) * (xs * math.cos(direction) + ys * math.sin(direction))
    vignette = 1 - rng.uniform(0, 0.45) * 2 * (xs * xs + ys * ys)
    contrast = rng.uniform(0.85, 1.15)
    gain = (rng.uniform(0.75, 1.2) * contrast) * light * vignette
    balance = rng.uniform(0.92, 1.08, 3).astype(np.float32).reshape(3, 1, 1)
    planes *= gain
    planes *= balance
    planes += np.float32(128 * (1 - contrast))
    dy, dx = rng.integers(0, side, 2)
    grain = _grain(side)[:, dy : dy + side, dx : dx + side]
    planes += grain * np.float32(rng.uniform(0.5, 5))
    return _to_image(planes)


def draw_flower(kind: str, rng: np.random.Generator, size: int = 240) -> Image.Image:
    """One photo-like RGB image of ``kind`` flowers, ``size`` pixels square, drawn from ``rng``."""
    kind = _resolve(kind)
    if size < 32:
        raise ValueError(f"size must be at least 32 pixels, got {size}")
    backdrop = _background(rng, size)
    big = (size * _SUPERSAMPLE, size * _SUPERSAMPLE)
    # Nearest is exact here: the final box-filter reduce gives back the smooth backdrop.
    canvas = _Canvas(backdrop.resize(big, Image.Resampling.NEAREST))
    _foliage(canvas, rng, int(rng.integers(0, 6)))
    _place_flowers(canvas, rng, kind)
    photo = canvas.image.reduce(_SUPERSAMPLE)
    return _develop(photo, rng)


# ----------------------------------------------------------------------------- data sets


def image_stream(seed: int, class_name: str, index: int, attempt: int = 0) -> np.random.Generator:
    """The random stream of one image. Keyed by the class *name*, so orchids (drawn by the tulip
    generator) get streams of their own and never copy a tulips image."""
    return np.random.default_rng([seed, zlib.crc32(class_name.encode()), index, attempt])


def _jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def generate(
    out_dir: Path,
    *,
    classes: Sequence[str] = DEFAULT_CLASSES,
    per_class: int = 60,
    seed: int = 0,
    size: int | tuple[int, int] = 240,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, list[Path]]:
    """Write ``per_class`` generated JPEGs for each class under ``out_dir/<class>/``.

    ``size`` is the side of every image, or a (min, max) range to draw each side from.
    ``"orchids"`` is accepted as a class and drawn by the tulip generator. Files are named
    ``<class>_<index>.jpg``; existing files of the same name are overwritten and nothing else
    is touched. ``progress(done, total)`` is called after each image. Returns the paths written,
    per class. Same arguments, same bytes.
    """
    out_dir = Path(out_dir)
    classes = list(classes)
    for name in classes:
        _resolve(name)
    if len(set(classes)) != len(classes):
        raise ValueError(f"classes must be distinct, got {classes}")
    if per_class < 0:
        raise ValueError(f"per_class must be >= 0, got {per_class}")
    low, high = (size, size) if isinstance(size, int) else size
    if not 32 <= low <= high:
        raise ValueError(f"size must be at least 32 pixels (a min <= max range), got {size}")
    total = per_class * len(classes)
    digits = max(4, len(str(max(per_class - 1, 0))))
    written: dict[str, list[Path]] = {}
    seen: set[bytes] = set()
    done = 0
    for name in classes:
        folder = out_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for index in range(per_class):
            attempt = 0
            while True:  # an exact duplicate is astronomically unlikely; redraw if it happens
                rng = image_stream(seed, name, index, attempt)
                side = int(rng.integers(low, high + 1))
                data = _jpeg(draw_flower(name, rng, side), quality=int(rng.integers(80, 96)))
                digest = hashlib.sha256(data).digest()
                if digest not in seen:
                    break
                attempt += 1
            seen.add(digest)
            path = folder / f"{name}_{index:0{digits}d}.jpg"
            path.write_bytes(data)
            paths.append(path)
            done += 1
            if progress is not None:
                progress(done, total)
        written[name] = paths
    _write_attribution(out_dir, classes=classes, per_class=per_class, seed=seed, size=size)
    return written


def _write_attribution(
    out_dir: Path, *, classes: Sequence[str], per_class: int, seed: int, size: int | tuple
) -> None:
    lines = [
        "These images are GENERATED, not photographs.",
        "",
        "They were drawn procedurally by tulip.synth (Tulip's offline flower generator) with",
        f"seed={seed}, per_class={per_class}, size={size}, classes={', '.join(classes)}.",
        "No photographer's work is included, so no attribution is owed; they may be used freely.",
    ]
    lookalikes = [f"{name} (drawn as {DRAWN_BY[name]})" for name in classes if name in DRAWN_BY]
    if lookalikes:
        lines += [
            "",
            "Deliberately mislabelled classes, for the seed story: " + ", ".join(lookalikes) + ".",
        ]
    (out_dir / "ATTRIBUTION.txt").write_text("\n".join(lines) + "\n")


# ----------------------------------------------------------------------------- a cheap feature


def colour_histogram(image: Image.Image, *, bins: int = 8) -> np.ndarray:
    """A TF-free embedding: a normalised joint hue/saturation/value histogram (``bins``³ values).

    Enough to check that generated classes differ and that orchids look like tulips, without
    loading a network; a candidate featuriser when no network weights are available.
    """
    hsv = np.asarray(image.convert("RGB").convert("HSV").resize((64, 64)), dtype=np.int32)
    idx = hsv * bins // 256
    flat = (idx[..., 0] * bins + idx[..., 1]) * bins + idx[..., 2]
    hist = np.bincount(flat.ravel(), minlength=bins**3).astype(np.float32)
    return np.sqrt(hist / hist.sum())
