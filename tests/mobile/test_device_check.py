"""The device-equivalent check: each app's preprocessing against the pipeline's."""

from __future__ import annotations

import json

import pytest

from mobile.device_check import check_platforms
from mobile.errors import InvalidCheckInput
from mobile.preprocess import PlatformSpec

FORGOT_TO_NORMALISE = PlatformSpec("raw_pixels", mean=0.0, std=1.0)
BGR_ANDROID = PlatformSpec("android_bgr", mean=128.0, std=128.0, channel_order="BGR")
ZERO_ONE = PlatformSpec("zero_one", mean=0.0, std=255.0)


@pytest.fixture(scope="module")
def report(stamped, flower_model):
    return check_platforms(
        stamped.content,
        list(flower_model.test),
        platforms=["android", "ios", FORGOT_TO_NORMALISE, BGR_ANDROID, ZERO_ONE],
    )


def test_reports_accuracy_agreement_and_latency_per_platform(report, flower_model):
    assert report.images == len(flower_model.test)
    assert report.reference == "pipeline"
    assert report.reference_accuracy >= 0.7
    assert [p.platform for p in report.platforms][:2] == ["android", "ios"]
    for result in report.platforms:
        assert 0.0 <= result.accuracy <= 1.0
        assert result.agreement == pytest.approx(1.0 - result.changed_fraction)
        assert len(result.changed) == round(result.changed_fraction * report.images)
        assert 0 < result.latency_ms_median <= result.latency_ms_p90
        assert result.preprocess_ms_median > 0
    json.dumps(report.as_dict())  # the CLI prints it with -o json


def test_android_preprocessing_agrees_with_the_pipeline(report):
    android = report.platform("android")
    # (x-128)/128 on a plain bilinear resize vs (x-127.5)/127.5 on Pillow's: near enough.
    assert android.agreement >= 0.95
    assert android.spec["mean"] == 128.0 and android.spec["std"] == 128.0


def test_injected_preprocessing_mismatches_are_flagged(report):
    raw = report.platform("raw_pixels")
    assert raw.flagged and raw.changed_fraction > 0.2
    bgr = report.platform("android_bgr")
    assert bgr.flagged and bgr.changed_fraction > report.max_changed
    assert "raw_pixels" in report.flagged and "android_bgr" in report.flagged
    changed = raw.changed[0]
    assert changed.reference != changed.platform
    # mean 0 / std 255 only shifts and halves the range, which this model mostly shrugs off;
    # its result is reported either way.
    assert report.platform("zero_one").changed_fraction < raw.changed_fraction


def test_given_reference_predictions_are_used(stamped, flower_model, report):
    images = list(flower_model.test)
    # The pipeline says every image is class 0: every other prediction counts as changed.
    given = check_platforms(stamped.content, images, [0] * len(images), platforms=["android"])
    assert given.reference == "given"
    android = given.platform("android")
    expected = sum(c.platform != flower_model.labels[0] for c in android.changed)
    assert len(android.changed) == expected > 0
    assert android.flagged


def test_bad_inputs_are_refused(stamped, flower_model):
    images = list(flower_model.test[:3])
    with pytest.raises(InvalidCheckInput, match="no test images"):
        check_platforms(stamped.content, [])
    with pytest.raises(InvalidCheckInput, match="2 reference predictions for 3 images"):
        check_platforms(stamped.content, images, [0, 1])
    with pytest.raises(InvalidCheckInput, match="not class indices"):
        check_platforms(stamped.content, images, [0, 1, 7])
