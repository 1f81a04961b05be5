"""What the app shows: top-k labels from the model file, run with LiteRT."""

from __future__ import annotations

import numpy as np
import pytest

from mobile.errors import LabelsMismatch
from mobile.labels import format_labels
from mobile.predict import Prediction, predict, top_predictions


def test_top_k_is_sorted_by_probability_and_ties_keep_output_order():
    scores = np.array([0.1, 0.3, 0.05, 0.3, 0.25], np.float32)
    labels = ["a", "b", "c", "d", "e"]
    top = top_predictions(scores, labels, top_k=3)
    assert [p.label for p in top] == ["b", "d", "e"]
    assert top[0] == Prediction("b", pytest.approx(0.3))
    assert [p.label for p in top_predictions(scores, labels, top_k=10)] == list("bdeac")
    assert top_predictions(scores, labels, top_k=0) == []
    # iOS shows at most 5 results of at least 0.1
    ios = top_predictions(scores, labels, top_k=5, min_probability=0.1)
    assert [p.label for p in ios] == ["b", "d", "e", "a"]


def test_predict_uses_the_embedded_labels(stamped, flower_model, tmp_path):
    path = tmp_path / "graph.lite"
    path.write_bytes(stamped.content)
    images = [p for p, _ in flower_model.test]
    results = predict(path, images, top_k=3)
    assert len(results) == len(images)
    for top in results:
        assert len(top) == 3
        probs = [p.probability for p in top]
        assert probs == sorted(probs, reverse=True)
        assert {p.label for p in top} <= set(flower_model.labels)
        assert 0.0 <= sum(probs) <= 1.0 + 1e-5
    hits = [
        top[0].label == truth for top, (_, truth) in zip(results, flower_model.test, strict=True)
    ]
    assert np.mean(hits) >= 0.7  # a real classifier, not noise


def test_predict_with_a_labels_file_for_a_bare_model(flower_model, tmp_path):
    labels_path = tmp_path / "labels.txt"
    labels_path.write_bytes(format_labels(flower_model.labels))
    image = flower_model.test[0][0]
    from_file = predict(flower_model.path, [image], labels=labels_path, top_k=1)
    from_list = predict(flower_model.path, [image], labels=list(flower_model.labels), top_k=1)
    assert from_file == from_list
    with pytest.raises(LabelsMismatch, match="carries no labels"):
        predict(flower_model.path, [image])
    with pytest.raises(LabelsMismatch, match="2 labels but the model has 3"):
        predict(flower_model.path, [image], labels=["a", "b"])


def test_platforms_can_rank_differently_but_see_the_same_labels(stamped, flower_model):
    images = [p for p, _ in flower_model.test[:6]]
    android = predict(stamped.content, images, platform="android", top_k=3)
    ios = predict(stamped.content, images, platform="ios", top_k=3)
    for a, i in zip(android, ios, strict=True):
        assert {p.label for p in a} <= set(flower_model.labels)
        assert {p.label for p in i} <= set(flower_model.labels)
