"""Would the phones agree with the pipeline on a stored model? The device-equivalent check
(``mobile.device_check``) run on the split Train held out, with the images copied out of the
data commit Train read (``tulip mobile check``, ``tulip export mobile --check``)."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.backend import Backend
from pipelines.info import USER, CommitInfo
from pipelines.layout import SPLITS_FILE, TFLITE_FILE, label_of, read_json

from . import metadata
from .errors import InvalidCheckInput
from .source import ModelSource, file_hash, inputs_of, load_model_source

CHECK_SCHEMA = "tulip.release-check/v1"
SPLITS = ("test", "validation", "held-out", "all")


@dataclass(frozen=True)
class ReleaseCheck:
    source: ModelSource
    split: str
    images_commit: metadata.CommitRef
    paths: tuple[str, ...]  # repo paths, in the order of the report's images
    report: Any  # mobile.device_check.DeviceCheckReport
    local_to_repo: dict[str, str]

    @property
    def flagged(self) -> list[str]:
        return self.report.flagged

    def as_dict(self) -> dict[str, Any]:
        report = self.report.as_dict()
        report.pop("model", None)
        for platform in report["platforms"]:
            for changed in platform["changed"]:
                changed["path"] = self.local_to_repo.get(changed["path"], changed["path"])
        published = (self.source.conversion or {}).get("published") or {}
        return {
            "schema": CHECK_SCHEMA,
            "requested": {"repo": self.source.requested.repo, "commit": self.source.requested.id},
            "model": {"repo": self.source.commit.repo, "commit": self.source.commit.id},
            "model_file": f"{self.source.commit.ref}:{TFLITE_FILE}",
            "blocked": (
                {"commit": self.source.requested.id, "reason": self.source.requested.error}
                if self.source.blocked
                else None
            ),
            "architecture": self.source.architecture,
            "split": self.split,
            "images_commit": self.images_commit.as_dict(),
            "keras_agreement": published.get("agreement"),
            "runtime": self.runtime(),
            **{k: v for k, v in report.items() if k != "schema"},
        }

    def runtime(self) -> dict[str, Any]:
        """What ran the model, and the oldest TensorFlow Lite that can: for app runtimes."""
        from .runtime import DEFAULT_RUNTIMES, interpreter_runtime, required_runtime

        return {
            **interpreter_runtime(),
            "model_min_runtime_version": required_runtime(self.source.content),
            "app_runtimes": dict(DEFAULT_RUNTIMES),
        }


def split_paths(splits: dict, split: str) -> list[str]:
    """Repo paths of one split of Train's ``splits.json`` (``held-out``: test + validation)."""
    wanted = {
        "test": {"test"},
        "validation": {"validation"},
        "held-out": {"test", "validation"},
        "all": {"train", "test", "validation"},
    }.get(split)
    if wanted is None:
        raise InvalidCheckInput(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    files = splits.get("files") or {}
    return sorted(p for p, entry in files.items() if (entry or {}).get("split") in wanted)


def check_release(
    backend: Backend,
    ref: str | CommitInfo | ModelSource,
    *,
    split: str = "test",
    platforms: Sequence[Any] = ("android", "ios"),
    max_changed: float | None = None,
    workdir: Path | None = None,
) -> ReleaseCheck:
    """Run the model ``ref`` holds as each app would, on the split Train held out.

    The images are copied out of the data commit Train read (into ``workdir``, or a
    temporary folder removed afterwards). The reference predictions are the same model's
    under the pipeline's own preprocessing; ``keras_agreement`` in the result is Convert's
    measured agreement between that model and the Keras model it came from.
    """
    from .device_check import DEFAULT_MAX_CHANGED, check_platforms

    source = ref if isinstance(ref, ModelSource) else load_model_source(backend, ref)
    if source.train is None:
        raise InvalidCheckInput(
            f"{source.commit.ref} has no Train commit among its inputs, so there is no test "
            "split to check on; use `tulip predict` on images of your own"
        )
    splits = read_json(backend, source.train.repo, source.train.id, SPLITS_FILE)
    if not splits:
        raise InvalidCheckInput(f"{source.train.ref} holds no readable {SPLITS_FILE}")
    paths = split_paths(splits, split)
    if not paths:
        raise InvalidCheckInput(
            f"the {split} split of {source.train.ref} is empty; try --split held-out or all"
        )
    images = None
    for candidate in inputs_of(backend, source.train):
        if candidate.origin == USER and file_hash(backend, candidate.repo, candidate.id, paths[0]):
            images = candidate
            break
    if images is None:
        raise InvalidCheckInput(
            f"none of the inputs of {source.train.ref} holds {paths[0]}: cannot find the "
            "images the model was trained on"
        )

    def run(folder: Path) -> ReleaseCheck:
        labeled, local_to_repo = [], {}
        for path in paths:
            target = folder / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            backend.copy_out(images.repo, images.id, path, target)
            labeled.append((target, label_of(path)))
            local_to_repo[str(target)] = f"{images.repo}@{images.id}:{path}"
        report = check_platforms(
            source.content,
            labeled,
            platforms=platforms,
            labels=list(source.labels),
            max_changed=DEFAULT_MAX_CHANGED if max_changed is None else max_changed,
        )
        return ReleaseCheck(
            source=source,
            split=split,
            images_commit=metadata.CommitRef(images.repo, images.id),
            paths=tuple(paths),
            report=report,
            local_to_repo=local_to_repo,
        )

    if workdir is not None:
        return run(Path(workdir))
    with tempfile.TemporaryDirectory(prefix="tulip-mobile-check-") as tmp:
        return run(Path(tmp))
