"""A model: Train's metrics and confusion matrix, Convert's variants with their Keras–TFLite
agreement, and the model's provenance. Given either the Train or the Convert commit, the
other is found in the same commit set (or the commit's direct provenance).

The page tells the truth about a round the gate blocked (or whose Convert job failed): that
Convert commit publishes nothing of its own and only carries the last good model's files
over. Its page says so in a banner and shows that model, with the metrics of the training
that produced it, never this round's metrics beside the carried-over conversion. A Train
commit whose conversion was blocked shows its metrics, and no conversion."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, jsonify, redirect, render_template, request, url_for

from pipelines.backend import Backend
from pipelines.errors import TulipError
from pipelines.info import CommitInfo
from pipelines.layout import CONVERSION_FILE, METRICS_FILE

from ..cache import caches
from ..charts import heat_colour
from ..reads import cached_json, resolve, set_member
from ..request_store import get_backend
from .audits import commit_href

bp = Blueprint("models", __name__)


def _doc(backend: Backend, commit: CommitInfo | None, path: str) -> Any:
    if commit is None:
        return None
    found = cached_json(backend, commit.repo, commit.id, path, caches().json_docs)
    return None if found is None else found[1]


def confusion(metrics: dict | None) -> dict | None:
    """The test confusion matrix with a colour per cell (row-normalised)."""
    if not isinstance(metrics, dict):
        return None
    split = metrics.get("test") if isinstance(metrics.get("test"), dict) else {}
    cm = split.get("confusion_matrix")
    if not isinstance(cm, dict) or not isinstance(cm.get("matrix"), list):
        return None
    labels = [str(x) for x in cm.get("labels") or metrics.get("labels") or []]
    rows = []
    for i, row in enumerate(cm["matrix"]):
        if not isinstance(row, list):
            continue
        total = sum(v for v in row if isinstance(v, int | float)) or 1
        rows.append(
            {
                "label": labels[i] if i < len(labels) else str(i),
                "cells": [
                    {
                        "value": v,
                        "fill": heat_colour(v / total if isinstance(v, int | float) else 0, 1.0)
                        if i != j
                        else "#d9f2d9",
                        "diagonal": i == j,
                    }
                    for j, v in enumerate(row)
                ],
            }
        )
    return {"labels": labels, "rows": rows}


def model_data(backend: Backend, commit: CommitInfo) -> dict:
    from auditor.status import gate_state, last_good_commit

    train = set_member(backend, commit, METRICS_FILE)
    convert = set_member(backend, commit, CONVERSION_FILE)
    if train is None and convert is None:
        abort(
            404,
            f"{commit.repo}@{commit.id} is not a model: neither it nor its commit set holds "
            f"{METRICS_FILE} or {CONVERSION_FILE}",
        )
    stopped = None  # this round's Convert did not publish: blocked by the gate, or failed
    if convert is not None and convert.error:
        gate = gate_state(backend, convert)
        carried = last_good_commit(backend, convert)
        stopped = {
            "commit": convert,
            "state": gate.state if gate else "failed",
            "reason": gate.reason if gate else convert.error,
            "carried_from": carried,
        }
        if (commit.repo, commit.id) == (convert.repo, convert.id):
            # the page of the blocked commit: the model it holds is the last good one
            convert = carried
            train = None if carried is None else set_member(backend, carried, METRICS_FILE)
        else:
            convert = None  # this round's training has no conversion of its own
    metrics = _doc(backend, train, METRICS_FILE)
    conversion = _doc(backend, convert, CONVERSION_FILE)
    try:
        provenance = backend.provenance(commit)
    except TulipError:
        provenance = []
    return {
        "commit": commit,
        "train": train,
        "convert": convert,
        "stopped": stopped,
        "metrics": metrics if isinstance(metrics, dict) else None,
        "conversion": conversion if isinstance(conversion, dict) else None,
        "confusion": confusion(metrics),
        "provenance": provenance,
    }


@bp.get("/models/<repo>/<ref>")
def page(repo: str, ref: str):
    backend = get_backend()
    commit = resolve(backend, repo, ref)
    if ref != commit.id:
        return redirect(url_for("models.page", repo=repo, ref=commit.id, **request.args))
    return render_template("model.html", **model_data(backend, commit), commit_href=commit_href)


@bp.get("/api/models/<repo>/<ref>")
def api(repo: str, ref: str):
    backend = get_backend()
    d = model_data(backend, resolve(backend, repo, ref))
    return jsonify(
        {
            "commit": d["commit"].as_dict(),
            "train": d["train"].as_dict() if d["train"] else None,
            "convert": d["convert"].as_dict() if d["convert"] else None,
            "metrics": d["metrics"],
            "conversion": d["conversion"],
            "stopped": None
            if d["stopped"] is None
            else {
                "commit": d["stopped"]["commit"].as_dict(),
                "state": d["stopped"]["state"],
                "reason": d["stopped"]["reason"],
                "carried_from": d["stopped"]["carried_from"].as_dict()
                if d["stopped"]["carried_from"]
                else None,
            },
            "provenance": [
                {"repo": r.repo, "branch": r.branch, "id": r.id} for r in d["provenance"]
            ],
        }
    )
