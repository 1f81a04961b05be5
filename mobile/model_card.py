"""The model card shipped next to graph.lite: what the model knows, how well, and from where.

``model_card.json`` is for tools, ``model_card.md`` for people reviewing the app change. Both
come from one ``ModelCard``. Label strings and other free text come from data folders and
command lines, so the Markdown escapes them: a label like ``<img src=x>`` or ``a|b`` shows as
text and cannot break the table or inject HTML.

Per-class accuracy is read from a metrics dict in any of these shapes:

* Train's ``metrics.json``: ``{"accuracy": .., "test": {"per_class": {label: {"n", "accuracy"}}}}``
* ``{"per_class": {label: accuracy | {"accuracy" or "recall", "n" or "support"}}}``
* scikit-learn's ``classification_report(output_dict=True)``: ``{label: {"recall", "support"}}``
"""

from __future__ import annotations

import datetime as _dt
import html
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .metadata import AuditRef, CommitRef, Manifest

CARD_SCHEMA = "tulip.model-card/v1"


@dataclass(frozen=True)
class ClassRow:
    label: str
    accuracy: float | None
    support: int | None


@dataclass(frozen=True)
class ModelCard:
    labels: tuple[str, ...]
    classes: tuple[ClassRow, ...]
    accuracy: float | None
    variant: str | None
    size_bytes: int
    model_sha256: str
    weights_sha256: str
    model: CommitRef
    data: tuple[CommitRef, ...]
    audit: AuditRef | None
    override_reason: str | None
    preprocessing: dict[str, Any]
    created: str
    exported_at: str
    tulip_version: str
    device_check: dict[str, Any] | None = field(default=None)
    # min_runtime_version of graph.lite and the app runtimes it was held against
    runtime: dict[str, Any] | None = field(default=None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema": CARD_SCHEMA,
            "labels": list(self.labels),
            "accuracy": self.accuracy,
            "per_class": [
                {"label": row.label, "accuracy": row.accuracy, "support": row.support}
                for row in self.classes
            ],
            "variant": self.variant,
            "size_bytes": self.size_bytes,
            "sha256": {"file": self.model_sha256, "weights": self.weights_sha256},
            "model": self.model.as_dict(),
            "data": [ref.as_dict() for ref in self.data],
            "audit": None if self.audit is None else self.audit.as_dict(),
            "override_reason": self.override_reason,
            "preprocessing": self.preprocessing,
            "created": self.created,
            "exported_at": self.exported_at,
            "tulip_version": self.tulip_version,
            "device_check": self.device_check,
            "runtime": self.runtime,
        }


def per_class_accuracy(
    metrics: Mapping[str, Any] | None, labels: tuple[str, ...]
) -> tuple[ClassRow, ...]:
    """One row per label, in label order; accuracy None where the metrics do not say."""
    table: Mapping[str, Any] = {}
    if metrics:
        test = metrics.get("test")
        if isinstance(test, Mapping) and isinstance(test.get("per_class"), Mapping):
            table = test["per_class"]
        elif isinstance(metrics.get("per_class"), Mapping):
            table = metrics["per_class"]
        else:
            table = metrics
    rows = []
    for label in labels:
        entry = table.get(label)
        accuracy = support = None
        if isinstance(entry, (int, float)) and not isinstance(entry, bool):
            accuracy = float(entry)
        elif isinstance(entry, Mapping):
            value = entry.get("accuracy", entry.get("recall"))
            accuracy = None if value is None else float(value)
            count = entry.get("n", entry.get("support"))
            support = None if count is None else int(count)
        rows.append(ClassRow(label, accuracy, support))
    return tuple(rows)


def build_model_card(
    manifest: Manifest,
    *,
    model_size: int,
    model_sha256: str,
    metrics: Mapping[str, Any] | None = None,
    device_check: Any = None,
    variant: str | None = None,
    exported_at: _dt.datetime | None = None,
    runtime: Mapping[str, Any] | None = None,
) -> ModelCard:
    """A card for the stamped model described by ``manifest`` (see ``metadata``)."""
    when = (exported_at or _dt.datetime.now(_dt.UTC)).astimezone(_dt.UTC)
    overall = None
    if metrics and isinstance(metrics.get("accuracy"), (int, float)):
        overall = float(metrics["accuracy"])
    if device_check is not None and hasattr(device_check, "as_dict"):
        device_check = device_check.as_dict()
    if isinstance(device_check, Mapping):
        device_check = {
            key: device_check[key]
            for key in ("images", "reference", "reference_accuracy", "max_changed", "flagged")
            if key in device_check
        } | {
            "platforms": [
                {
                    k: p.get(k)
                    for k in (
                        "platform",
                        "accuracy",
                        "agreement",
                        "changed_fraction",
                        "flagged",
                        "latency_ms_median",
                        "latency_ms_p90",
                    )
                }
                for p in device_check.get("platforms", [])
            ]
        }
    return ModelCard(
        labels=manifest.labels,
        classes=per_class_accuracy(metrics, manifest.labels),
        accuracy=overall,
        variant=variant or manifest.architecture or (metrics or {}).get("architecture"),
        size_bytes=model_size,
        model_sha256=model_sha256,
        weights_sha256=manifest.weights_sha256,
        model=manifest.model,
        data=manifest.data,
        audit=manifest.audit,
        override_reason=manifest.override_reason,
        preprocessing=manifest.preprocessing,
        created=manifest.created,
        exported_at=when.isoformat(timespec="seconds").replace("+00:00", "Z"),
        tulip_version=manifest.tulip_version,
        device_check=device_check,
        runtime=None if runtime is None else dict(runtime),
    )


def _runtime_lines(runtime: Mapping[str, Any] | None) -> list[str]:
    if not runtime:
        return []
    need = runtime.get("min_runtime_version") or "not recorded by the converter"
    targets = ", ".join(
        f"{md_text(p)} {md_text(v)}" for p, v in (runtime.get("targets") or {}).items()
    )
    line = f"- **Needs TensorFlow Lite:** {md_text(need)} or newer"
    if targets:
        line += f" (held against the apps' runtimes: {targets})"
    lines = [line]
    if runtime.get("variant") not in (None, "published"):
        lines.append(
            f"- **Runtime fallback:** the {md_text(runtime['variant'])} variant, because the "
            f"published model needs {md_text(runtime.get('published_min_runtime_version'))}"
        )
    return lines


def render_json(card: ModelCard) -> str:
    return json.dumps(card.as_dict(), indent=2, ensure_ascii=False) + "\n"


_MARKDOWN_SPECIALS = set("\\`*_{}[]()#+-.!|~<>&:\"'=")


def md_text(value: object) -> str:
    """``value`` as inert Markdown text: HTML-escaped, specials backslash-escaped, one line.

    Not for use inside code spans, where backslashes are shown as they are.
    """
    text = " ".join(str(value).split())
    out = []
    for ch in text:
        if ch in "<>&\"'":
            out.append(html.escape(ch, quote=True))
        elif ch in _MARKDOWN_SPECIALS:
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _size(n: int) -> str:
    return f"{n / 1e6:.2f} MB ({n:,} bytes)" if n >= 1e5 else f"{n:,} bytes"


def render_markdown(card: ModelCard) -> str:
    audit = card.audit
    verdict = "none (no audit)" if audit is None else audit.verdict.upper()
    lines = [
        "# Model card",
        "",
        f"- **Model commit:** {md_text(card.model.repo)}@{md_text(card.model.commit)}",
        f"- **Variant:** {md_text(card.variant) if card.variant else 'n/a'}",
        f"- **Size:** {_size(card.size_bytes)}",
        *_runtime_lines(card.runtime),
        f"- **Audit verdict:** {verdict}"
        + (f" ({md_text(audit.repo)}@{md_text(audit.commit)})" if audit and audit.commit else ""),
    ]
    if card.override_reason:
        lines.append(
            f"- **Exported despite the audit gate; reason:** {md_text(card.override_reason)}"
        )
    lines += [
        f"- **Overall test accuracy:** {_pct(card.accuracy)}",
        f"- **Exported:** {card.exported_at} (model stamped {card.created}, "
        f"Tulip {md_text(card.tulip_version)})",
        f"- **sha256 of graph.lite:** `{card.model_sha256}`",
        f"- **sha256 of the weights:** `{card.weights_sha256}`",
        "",
        "## Labels and accuracy per class",
        "",
        "Output order of the model, the order of `labels.txt`.",
        "",
        "| # | Label | Test accuracy | Test images |",
        "|---:|---|---:|---:|",
    ]
    for i, row in enumerate(card.classes):
        support = "n/a" if row.support is None else str(row.support)
        lines.append(f"| {i} | {md_text(row.label)} | {_pct(row.accuracy)} | {support} |")
    lines += ["", "## Data commits", ""]
    lines += [f"- {md_text(ref.repo)}@{md_text(ref.commit)}" for ref in card.data] or ["- none"]
    lines += ["", "## Input preprocessing", ""]
    size = card.preprocessing.get("size", [224, 224])
    lines.append(f"RGB {size[0]}x{size[1]}, float32 `(x - mean) / std`:")
    lines.append("")
    for name, spec in card.preprocessing.get("platforms", {}).items():
        lines.append(
            f"- {md_text(name)}: mean {spec.get('mean')}, std {spec.get('std')}, "
            f"resize {md_text(spec.get('resize'))}"
        )
    if card.device_check:
        lines += [
            "",
            "## Device check",
            "",
            f"{card.device_check.get('images')} test images, each app's preprocessing compared "
            "with the pipeline's.",
            "",
            "| Platform | Accuracy | Agreement | Flagged | Latency median / p90 |",
            "|---|---:|---:|---|---:|",
        ]
        for p in card.device_check.get("platforms", []):
            lines.append(
                f"| {md_text(p['platform'])} | {_pct(p['accuracy'])} | {_pct(p['agreement'])} "
                f"| {'yes' if p['flagged'] else 'no'} "
                f"| {p['latency_ms_median']:.2f} / {p['latency_ms_p90']:.2f} ms |"
            )
    lines += [
        "",
        "Provenance is embedded in graph.lite; `tulip identify graph.lite` prints it and checks "
        "the file.",
        "",
    ]
    return "\n".join(lines)
