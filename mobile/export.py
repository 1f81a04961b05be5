"""Put an audited model into the Android and iOS apps, all at once or not at all.

The targets follow the tensorflow-for-poets-2 layout. Each root given (``--android DIR``,
``--ios DIR``) is the folder that holds the apps, i.e. the root of a tensorflow-for-poets-2
checkout, the same folder for both if you like:

* ``<android root>/android/tflite/app/src/main/assets/{graph.lite,labels.txt}``
* ``<ios root>/ios/tflite/data/{graph.lite,labels.txt}``

plus ``model_card.md`` and ``model_card.json`` beside them. The app project itself
(``android/tflite/app``, ``ios/tflite``) must already exist, so that a wrong path is an error
rather than a new tree of folders; a missing ``assets``/``data`` folder inside it is created.

How the export stays atomic:

1. Everything is validated before anything is written: the model is a TFLite classifier,
   the labels match its outputs one to one, the roots and app projects exist, and nothing is
   in the way (a file where a folder must be, or a folder where a file must be).
2. Every file for every target is staged as a hidden temporary file in its final folder,
   flushed and fsynced, and read back to check its sha256. A failure here (a read-only
   folder, a full disk) removes the temporaries and any folder the export created.
3. Only then are the staged files renamed over the old ones (``os.replace``, atomic per
   file), ``labels.txt`` first and ``graph.lite`` second in each folder, each old file kept
   as a hard-linked backup until every rename succeeded. If a rename fails the renamed files
   are put back from their backups, so the app folders end as they started.

No reader ever sees a half-written file. Two files cannot be swapped in one atomic step, so
between two renames (microseconds) a reader could see a new ``labels.txt`` with the old
``graph.lite``; the embedded manifest in ``graph.lite`` names its labels, so ``verify`` and
``tulip identify`` detect such a pair. Temporaries are dotfiles, which aapt and Xcode skip.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import os
import secrets
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.errors import GateBlocked

from . import tflite_file
from .errors import ExportTargetError, LabelsMismatch, UnsupportedModel
from .labels import check_labels, format_labels
from .metadata import LABELS_FILE_NAME as LABELS_FILE
from .metadata import MANIFEST_METADATA_NAME, StampedModel, check_app_classifier, parse_manifest

MODEL_FILE = "graph.lite"
APP_PROJECTS = {"android": Path("android/tflite/app"), "ios": Path("ios/tflite")}
ASSET_DIRS = {
    "android": APP_PROJECTS["android"] / "src/main/assets",
    "ios": APP_PROJECTS["ios"] / "data",
}


@dataclass(frozen=True)
class ExportedFile:
    platform: str
    path: Path
    sha256: str
    size: int


@dataclass(frozen=True)
class ExportResult:
    files: tuple[ExportedFile, ...]
    asset_dirs: dict[str, Path]
    exported_at: str

    def file(self, platform: str, name: str) -> ExportedFile:
        return next(f for f in self.files if f.platform == platform and f.path.name == name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "exported_at": self.exported_at,
            "asset_dirs": {k: str(v) for k, v in self.asset_dirs.items()},
            "files": [
                {"platform": f.platform, "path": str(f.path), "sha256": f.sha256, "size": f.size}
                for f in self.files
            ],
        }


def asset_dir(root: Path | str, platform: str) -> Path:
    """Where ``graph.lite`` and ``labels.txt`` go for ``platform`` under an app root."""
    return Path(root) / ASSET_DIRS[platform]


def export_to_apps(
    stamped: StampedModel,
    *,
    android: Path | str | None = None,
    ios: Path | str | None = None,
    metrics: Mapping[str, Any] | None = None,
    device_check: Any = None,
    variant: str | None = None,
    exported_at: _dt.datetime | None = None,
    runtime: Mapping[str, Any] | None = None,
) -> ExportResult:
    """Export a stamped model (``metadata.embed_manifest``) with its labels and model card.

    ``metrics`` (Train's metrics.json, for per-class accuracy), ``device_check`` (a
    ``DeviceCheckReport`` or its dict), ``variant`` (default: the manifest's
    architecture) and ``runtime`` (``mobile.runtime.RuntimeChoice.as_dict``) only feed the
    model card.

    Raises ``GateBlocked`` when the manifest records a failed audit or none, unless it also
    records an override reason (``Provenance.override_reason``, from ``--force --reason``):
    the store-level gate decides, and this check keeps a model that slipped past it off the
    phone.
    """
    audit = stamped.manifest.audit
    if (audit is None or audit.verdict == "fail") and not stamped.manifest.override_reason:
        state = (
            "has no audit" if audit is None else f"failed its audit ({audit.repo}@{audit.commit})"
        )
        raise GateBlocked(
            f"the model {stamped.manifest.model.repo}@{stamped.manifest.model.commit} {state}; "
            "fix the data and retrain, or export with --force --reason TEXT"
        )
    from .model_card import build_model_card, render_json, render_markdown

    when = (exported_at or _dt.datetime.now(_dt.UTC)).astimezone(_dt.UTC)
    card = build_model_card(
        stamped.manifest,
        model_size=len(stamped.content),
        model_sha256=stamped.sha256,
        metrics=metrics,
        device_check=device_check,
        variant=variant,
        exported_at=when,
        runtime=runtime,
    )
    return export_assets(
        stamped.content,
        stamped.manifest.labels,
        android=android,
        ios=ios,
        extra_files={
            "model_card.md": render_markdown(card).encode("utf-8"),
            "model_card.json": render_json(card).encode("utf-8"),
        },
        exported_at=when,
    )


def export_assets(
    model_bytes: bytes,
    labels: Sequence[str],
    *,
    android: Path | str | None = None,
    ios: Path | str | None = None,
    extra_files: Mapping[str, bytes] | None = None,
    source: str = "model",
    exported_at: _dt.datetime | None = None,
) -> ExportResult:
    """Write graph.lite, labels.txt and ``extra_files`` into each app, atomically (see above).

    Raises ``InvalidModelFile``, ``UnsupportedModel`` (not a float-in, float-out image
    classifier as the apps need), ``LabelsMismatch`` or
    ``ExportTargetError``; in every case the app folders are left exactly as they were.
    """
    targets = {name: root for name, root in (("android", android), ("ios", ios)) if root}
    if not targets:
        raise ExportTargetError("no app folder given; pass an Android root, an iOS root, or both")
    info = tflite_file.inspect_model(model_bytes, source=source)
    check_app_classifier(info, source)
    io_types = (info.inputs[0].dtype, info.outputs[0].dtype)
    if io_types != ("float32", "float32"):
        raise UnsupportedModel(
            f"{source} takes {io_types[0]} input and gives {io_types[1]} output, but the "
            "tensorflow-for-poets-2 apps write float32 pixels and read float32 scores; export "
            "a variant with float input and output (int8 weights are fine)"
        )
    labels = check_labels(labels, num_classes=info.num_classes, source=f"labels for {source}")
    model = tflite_file.load_model(model_bytes, source=source)
    embedded = tflite_file.named_metadata(model, model_bytes, MANIFEST_METADATA_NAME)
    if embedded and list(parse_manifest(embedded, source).labels) != labels:
        raise LabelsMismatch(
            f"the labels given differ from the ones embedded in {source}; "
            "export the labels the model was stamped with"
        )
    contents = {MODEL_FILE: bytes(model_bytes), LABELS_FILE: format_labels(labels)}
    for name, content in (extra_files or {}).items():
        if name in contents or Path(name).name != name or name.startswith("."):
            raise ExportTargetError(f"cannot export an extra file named {name!r}")
        contents[name] = bytes(content)
    # labels.txt, then graph.lite (the file that names its labels), then the rest
    order = [LABELS_FILE, MODEL_FILE, *[n for n in contents if n not in (LABELS_FILE, MODEL_FILE)]]

    plans = [_plan(platform, Path(root)) for platform, root in targets.items()]
    for plan in plans:
        for name in order:
            _check_not_in_the_way(plan.directory / name, want_dir=False)
    created: list[Path] = []
    staged: list[tuple[Path, Path]] = []  # (temporary, final)
    try:
        for plan in plans:
            created += _make_dirs(plan)
            for name in order:
                staged.append((_stage(plan.directory, name, contents[name]), plan.directory / name))
    except OSError as exc:
        _discard(staged, created)
        where = Path(exc.filename).parent if exc.filename else "the app folder"
        raise ExportTargetError(
            f"cannot write into {where}: {exc.strerror or exc}; nothing was changed. Check "
            "that the folder is writable and the disk is not full"
        ) from exc
    except BaseException:
        _discard(staged, created)
        raise
    _commit(staged, created)
    when = (exported_at or _dt.datetime.now(_dt.UTC)).astimezone(_dt.UTC)
    files = []
    for plan in plans:
        for name in order:
            content = contents[name]
            files.append(
                ExportedFile(
                    platform=plan.platform,
                    path=plan.directory / name,
                    sha256=hashlib.sha256(content).hexdigest(),
                    size=len(content),
                )
            )
    return ExportResult(
        files=tuple(files),
        asset_dirs={plan.platform: plan.directory for plan in plans},
        exported_at=when.isoformat(timespec="seconds").replace("+00:00", "Z"),
    )


@dataclass(frozen=True)
class _Plan:
    platform: str
    root: Path
    project: Path
    directory: Path


def _plan(platform: str, root: Path) -> _Plan:
    """Check the root and app project of one target; nothing is written here."""
    flag = f"--{platform}"
    if not root.exists():
        raise ExportTargetError(
            f"{flag} {root}: no such folder; pass the root of the tensorflow-for-poets-2 "
            f"checkout (the folder that contains {APP_PROJECTS[platform].parts[0]}/)"
        )
    if not root.is_dir():
        raise ExportTargetError(f"{flag} {root} is a file, not a folder")
    project = root / APP_PROJECTS[platform]
    if not project.is_dir():
        hint = ""
        for ancestor in root.resolve().parents:
            if (ancestor / APP_PROJECTS[platform]).is_dir():
                hint = f" {root} is inside the checkout; pass {ancestor} instead."
                break
        raise ExportTargetError(
            f"{flag} {root} does not hold the {platform} app: {project} is missing. Pass the "
            f"root of the tensorflow-for-poets-2 checkout (assets go to "
            f"<root>/{ASSET_DIRS[platform]}).{hint}"
        )
    directory = root / ASSET_DIRS[platform]
    probe = project
    for part in ASSET_DIRS[platform].relative_to(APP_PROJECTS[platform]).parts:
        probe = probe / part
        _check_not_in_the_way(probe, want_dir=True)
    return _Plan(platform, root, project, directory)


def _check_not_in_the_way(path: Path, *, want_dir: bool) -> None:
    if not os.path.lexists(path):
        return
    if want_dir and not path.is_dir():
        raise ExportTargetError(
            f"{path} is a file where the export needs a folder; move it away and export again"
        )
    if not want_dir and path.is_dir():
        raise ExportTargetError(
            f"{path} is a folder where the export needs to write a file; move it away and "
            "export again"
        )


def _make_dirs(plan: _Plan) -> list[Path]:
    missing = []
    probe = plan.directory
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    created = []
    for directory in reversed(missing):
        directory.mkdir()
        created.append(directory)
    return created


def _stage(directory: Path, name: str, content: bytes) -> Path:
    temporary = directory / f".{name}.tulip-{secrets.token_hex(4)}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    if hashlib.sha256(temporary.read_bytes()).digest() != hashlib.sha256(content).digest():
        temporary.unlink(missing_ok=True)
        raise OSError(5, "the staged copy does not read back as written", str(temporary))
    return temporary


def _discard(staged: list[tuple[Path, Path]], created: list[Path]) -> None:
    for temporary, _ in staged:
        temporary.unlink(missing_ok=True)
    for directory in reversed(created):
        with contextlib.suppress(OSError):
            directory.rmdir()


def _commit(staged: list[tuple[Path, Path]], created: list[Path]) -> None:
    """Rename every staged file into place, or put every old file back."""
    backups: list[tuple[Path, Path | None]] = []  # (final, hard link to the old file or None)
    done: list[tuple[Path, Path | None]] = []
    try:
        for _, final in staged:
            backups.append((final, _backup(final)))
        for (temporary, final), entry in zip(staged, backups, strict=True):
            os.replace(temporary, final)
            done.append(entry)
    except BaseException as exc:
        for final, backup in reversed(done):
            if backup is not None:
                os.replace(backup, final)
            else:
                final.unlink(missing_ok=True)
        _discard(staged, created)
        _remove_backups(backups)
        if isinstance(exc, OSError):
            raise ExportTargetError(
                f"cannot replace {exc.filename or 'a file'} in the app: "
                f"{exc.strerror or exc}; the app folders were restored as they were"
            ) from exc
        raise
    _remove_backups(backups)
    for directory in {final.parent for _, final in staged}:
        _fsync_dir(directory)


def _backup(final: Path) -> Path | None:
    if not os.path.lexists(final):
        return None
    backup = final.with_name(f".{final.name}.tulip-{secrets.token_hex(4)}.bak")
    try:
        os.link(final, backup, follow_symlinks=False)
    except OSError:
        shutil.copy2(final, backup, follow_symlinks=False)
    return backup


def _remove_backups(backups: list[tuple[Path, Path | None]]) -> None:
    for _, backup in backups:
        if backup is not None:
            backup.unlink(missing_ok=True)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
