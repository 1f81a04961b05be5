"""tulip.synth: the generated flower photos the offline demo and the tests fall back on."""

from __future__ import annotations

import hashlib
import itertools
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipelines.errors import TulipError
from tulip import synth

CLASSES = [*synth.DEFAULT_CLASSES, "orchids"]
PER_CLASS = 8


@pytest.fixture(scope="module")
def small_set(tmp_path_factory) -> tuple[Path, dict[str, list[Path]], list[tuple[int, int]]]:
    out = tmp_path_factory.mktemp("synth") / "flower_photos"
    calls: list[tuple[int, int]] = []
    written = synth.generate(
        out,
        classes=CLASSES,
        per_class=PER_CLASS,
        seed=7,
        progress=lambda done, total: calls.append((done, total)),
    )
    return out, written, calls


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_writes_the_flower_photos_layout(small_set):
    out, written, _ = small_set
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(CLASSES)
    for name in CLASSES:
        on_disk = sorted((out / name).iterdir())
        assert on_disk == sorted(written[name])
        assert len(on_disk) == PER_CLASS
        assert all(re.fullmatch(rf"{name}_\d{{4}}\.jpg", p.name) for p in on_disk)
    note = (out / "ATTRIBUTION.txt").read_text()
    assert "GENERATED" in note
    assert "orchids (drawn as tulips)" in note


def test_files_are_jpegs_of_the_requested_size(small_set):
    _, written, _ = small_set
    for path in itertools.chain.from_iterable(written.values()):
        with Image.open(path) as im:
            assert (im.format, im.mode, im.size) == ("JPEG", "RGB", (240, 240))
            im.load()


def test_no_two_images_are_identical(small_set):
    _, written, _ = small_set
    paths = list(itertools.chain.from_iterable(written.values()))
    assert len({_sha(p) for p in paths}) == len(paths)


def test_progress_reports_every_image(small_set):
    _, _, calls = small_set
    total = PER_CLASS * len(CLASSES)
    assert calls == [(done, total) for done in range(1, total + 1)]


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not(tmp_path):
    def run(folder: str, seed: int) -> list[str]:
        written = synth.generate(
            tmp_path / folder, classes=("daisy", "orchids"), per_class=3, seed=seed
        )
        return [_sha(p) for name in ("daisy", "orchids") for p in written[name]]

    first = run("a", seed=11)
    assert run("b", seed=11) == first
    assert not set(run("c", seed=12)) & set(first)


def test_orchids_are_new_tulips_not_copies(tmp_path):
    written = synth.generate(tmp_path, classes=("tulips", "orchids"), per_class=4)
    tulips = {_sha(p) for p in written["tulips"]}
    assert not tulips & {_sha(p) for p in written["orchids"]}


def test_random_sizes_stay_in_range(tmp_path):
    written = synth.generate(tmp_path, classes=("roses",), per_class=6, size=(200, 320))
    sizes = [Image.open(p).size for p in written["roses"]]
    assert all(w == h and 200 <= w <= 320 for w, h in sizes)
    assert len(set(sizes)) > 1


def test_unknown_class_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match=r"unknown flower kind 'lilies'; known kinds: daisy, "):
        synth.generate(tmp_path / "out", classes=("daisy", "lilies"), per_class=2)
    assert not (tmp_path / "out").exists()
    with pytest.raises(TulipError, match="orchids"):  # the message lists orchids as drawable
        synth.draw_flower("orchid", np.random.default_rng(0), 64)


@pytest.mark.parametrize(
    "kwargs", [{"per_class": -1}, {"classes": ("daisy", "daisy")}, {"size": 16}]
)
def test_bad_arguments_are_refused(tmp_path, kwargs):
    with pytest.raises(ValueError):
        synth.generate(tmp_path, **kwargs)


@pytest.mark.parametrize("kind", [*synth.KINDS, "orchids"])
def test_draw_flower_is_a_function_of_its_random_stream(kind):
    first = synth.draw_flower(kind, np.random.default_rng(5), 96)
    again = synth.draw_flower(kind, np.random.default_rng(5), 96)
    other = synth.draw_flower(kind, np.random.default_rng(6), 96)
    assert (first.mode, first.size) == ("RGB", (96, 96))
    assert np.array_equal(np.asarray(first), np.asarray(again))
    assert not np.array_equal(np.asarray(first), np.asarray(other))
    # A flower photo, not a flat fill: plenty of distinct colours.
    assert len(first.getcolors(96 * 96) or range(1000)) > 200


def test_importing_the_generator_does_not_load_tensorflow():
    code = "import sys, tulip.synth; print('tensorflow' in sys.modules or 'keras' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


# ----------------------------------------------------------------------------- the story


@pytest.fixture(scope="module")
def histograms(tmp_path_factory) -> tuple[np.ndarray, np.ndarray]:
    """Colour histograms of 24 small images per class, orchids included (no TensorFlow)."""
    out = tmp_path_factory.mktemp("synth_story")
    written = synth.generate(out, classes=CLASSES, per_class=24, seed=0, size=128)
    x, y = [], []
    for name, paths in written.items():
        for path in paths:
            with Image.open(path) as im:
                x.append(synth.colour_histogram(im))
            y.append(name)
    return np.stack(x), np.array(y)


def _classifier(c: float = 1.0):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000))


def _pair_auc(x: np.ndarray, y: np.ndarray, a: str, b: str) -> float:
    """Cross-validated AUC of a logistic regression telling a from b: 0.5 = indistinguishable."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    rows = np.isin(y, [a, b])
    target = (y[rows] == b).astype(int)
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    score = cross_val_predict(
        _classifier(c=0.05), x[rows], target, cv=folds, method="decision_function"
    )
    return float(roc_auc_score(target, score))


def test_orchids_look_like_tulips_and_the_real_classes_look_apart(histograms):
    x, y = histograms
    assert _pair_auc(x, y, "tulips", "orchids") < 0.75
    distinct = [
        _pair_auc(x, y, a, b)
        for a, b in itertools.combinations(CLASSES, 2)
        if {a, b} != {"tulips", "orchids"}
    ]
    assert min(distinct) > 0.75
    assert np.mean(distinct) > 0.88


def test_a_classifier_of_the_five_classes_calls_orchids_tulips(histograms):
    x, y = histograms
    five = np.isin(y, synth.DEFAULT_CLASSES)
    called = _classifier().fit(x[five], y[five]).predict(x[y == "orchids"])
    assert np.mean(called == "tulips") >= 0.5
