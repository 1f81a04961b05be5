"""The errors the mobile step raises on purpose: bad model files, bad labels, bad app folders.

All are ``TulipError``s, so the CLI maps them to exit code 2 (bad input) in one place. Each
message names the file or folder and says what to do about it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipelines.errors import GateBlocked, TulipError

if TYPE_CHECKING:
    from pipelines.info import CommitInfo


class InvalidModelFile(TulipError):
    """A file that is not a TensorFlow Lite model, or is one but truncated or damaged."""


class ManifestMissing(TulipError):
    """A valid TFLite model that carries no Tulip provenance manifest (not exported by Tulip)."""


class InvalidManifest(TulipError):
    """A Tulip manifest that is present but cannot be parsed or lacks required fields."""


class LabelsMismatch(TulipError):
    """Labels that do not fit the model: wrong count, empty, duplicated or multi-line."""


class ExportTargetError(TulipError):
    """An app folder that is missing, is not a folder, or cannot be written."""


class InvalidImage(TulipError):
    """An image file that cannot be decoded."""


class UnsupportedModel(TulipError):
    """A model whose input or output the app code cannot feed or read (shape or type)."""


class UnknownPlatform(TulipError):
    """A platform name other than the ones Tulip knows the preprocessing of."""


class InvalidCheckInput(TulipError):
    """Inputs to the device check that do not fit together (no images, wrong counts)."""


class NotAModel(TulipError):
    """A commit that holds no ``optimized_graph.lite``: not a Convert output."""


class ModelNotPublished(GateBlocked):
    """A Convert commit whose job failed or was blocked: its files are carried over."""

    def __init__(
        self, message: str, *, commit: CommitInfo, last_good: CommitInfo | None = None
    ) -> None:
        super().__init__(message)
        self.commit = commit
        self.last_good = last_good


class OverrideWithoutReason(TulipError):
    """``force`` without a reason: an override must say why, for the lineage."""


class ExportNotRecorded(TulipError):
    """The files reached the apps but the export record could not be written."""


class RuntimeTooOld(TulipError):
    """The model needs a newer TensorFlow Lite than an app's runtime, and no variant fits."""


class InvalidRuntimeVersion(TulipError, ValueError):
    """A runtime version that is not ``X.Y[.Z]`` or ``latest``."""
