"""The model card beside the exported assets: content, metrics shapes, safe Markdown."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re

from mobile.model_card import (
    build_model_card,
    md_text,
    per_class_accuracy,
    render_json,
    render_markdown,
)

WHEN = dt.datetime(2024, 5, 2, 8, 30, tzinfo=dt.UTC)


def test_card_carries_labels_accuracy_variant_audit_and_data(stamped):
    labels = stamped.manifest.labels
    metrics = {
        "accuracy": 0.85,
        "test": {
            "per_class": {
                labels[0]: {"n": 20, "accuracy": 0.95},
                labels[1]: {"n": 20, "accuracy": 0.75},
            }
        },
    }
    card = build_model_card(
        stamped.manifest,
        model_size=len(stamped.content),
        model_sha256=stamped.sha256,
        metrics=metrics,
        exported_at=WHEN,
    )
    doc = json.loads(render_json(card))
    assert doc["labels"] == list(labels)
    assert doc["per_class"][0] == {"label": labels[0], "accuracy": 0.95, "support": 20}
    assert doc["per_class"][2]["accuracy"] is None  # the metrics do not say
    assert doc["accuracy"] == 0.85
    assert doc["variant"] == "mobilenet_0.25_224 float32"
    assert doc["size_bytes"] == len(stamped.content)
    assert doc["audit"] == {"verdict": "pass", "repo": "Audit", "commit": "a" * 32}
    assert [d["repo"] for d in doc["data"]] == ["flower_photos", "label_reference"]
    assert doc["exported_at"] == "2024-05-02T08:30:00Z"
    text = render_markdown(card)
    assert "95.0%" in text and "75.0%" in text and "PASS" in text
    assert "flower\\_photos@" + "f" * 32 in text


def test_metrics_in_sklearn_and_flat_shapes():
    labels = ("a", "b")
    report = {"a": {"precision": 1.0, "recall": 0.5, "support": 4}, "accuracy": 0.5}
    assert [r.accuracy for r in per_class_accuracy(report, labels)] == [0.5, None]
    flat = {"per_class": {"a": 0.25, "b": {"accuracy": 1.0, "n": 2}}}
    rows = per_class_accuracy(flat, labels)
    assert [(r.accuracy, r.support) for r in rows] == [(0.25, None), (1.0, 2)]
    assert [r.accuracy for r in per_class_accuracy(None, labels)] == [None, None]


def test_hostile_labels_and_reasons_are_inert_markdown(stamped):
    evil = ("<script>alert(1)</script>", "a|b", "**bold** [x](javascript:alert(1))")
    manifest = dataclasses.replace(
        stamped.manifest, labels=evil, override_reason="ok`rm -rf`\n# heading"
    )
    card = build_model_card(manifest, model_size=1, model_sha256="0" * 64, exported_at=WHEN)
    text = render_markdown(card)
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "a\\|b" in text  # a pipe cannot split the table row
    assert "**bold**" not in text and "](javascript" not in text
    assert "\n# heading" not in text  # a newline in a reason cannot start a heading
    rows = [line for line in text.splitlines() if re.match(r"\| \d \|", line)]
    assert len(rows) == 3
    assert all(len(re.findall(r"(?<!\\)\|", row)) == 5 for row in rows)  # 4 cells each
    assert json.loads(render_json(card))["labels"] == list(evil)  # JSON keeps them verbatim


def test_md_text_escapes_markdown_and_html():
    assert md_text("a_b*c") == "a\\_b\\*c"
    assert md_text("<b>&") == "&lt;b&gt;&amp;"
    assert md_text("two\nlines") == "two lines"


def test_device_check_summary_goes_into_the_card(stamped):
    summary = {
        "images": 60,
        "reference": "pipeline",
        "reference_accuracy": 0.9,
        "max_changed": 0.01,
        "flagged": ["ios"],
        "platforms": [
            {
                "platform": "android",
                "accuracy": 0.9,
                "agreement": 1.0,
                "changed_fraction": 0.0,
                "flagged": False,
                "latency_ms_median": 1.2,
                "latency_ms_p90": 1.5,
                "changed": [],
            },
            {
                "platform": "ios",
                "accuracy": 0.88,
                "agreement": 0.98,
                "changed_fraction": 0.02,
                "flagged": True,
                "latency_ms_median": 1.2,
                "latency_ms_p90": 1.6,
                "changed": [],
            },
        ],
    }
    card = build_model_card(
        stamped.manifest,
        model_size=1,
        model_sha256="0" * 64,
        device_check=summary,
        exported_at=WHEN,
    )
    assert card.device_check["flagged"] == ["ios"]
    assert "changed" not in card.device_check["platforms"][0]
    text = render_markdown(card)
    assert "## Device check" in text and "| ios | 88.0% | 98.0% | yes |" in text
