"""``labels.txt`` as the tensorflow-for-poets-2 apps read it, and the checks that keep it right.

The Android app (``ImageClassifier.loadLabelList``) keeps every line ``BufferedReader.readLine``
returns, blank ones included, and sizes its output array by that count; the iOS app
(``LoadLabels`` in ``CameraExampleViewController.mm``) skips empty lines. So a label file is
only safe for both when it has exactly one non-empty label per line, no blank line, and one
label per model output, in output order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from .errors import LabelsMismatch


def format_labels(labels: Sequence[str]) -> bytes:
    """The bytes of ``labels.txt``: UTF-8, one label per line, a final newline."""
    return ("\n".join(labels) + "\n").encode("utf-8")


def parse_labels(text: str | bytes, *, source: str = "labels.txt") -> list[str]:
    """Labels from a ``labels.txt``; a final newline is allowed, blank lines are not."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise LabelsMismatch(f"{source} is not UTF-8 text ({exc}); save it as UTF-8") from exc
    if text.endswith("\n"):
        text = text[:-1]
    labels = [line.removesuffix("\r") for line in text.split("\n")] if text else []
    check_labels(labels, source=source)
    return labels


def read_labels(path: Path | str) -> list[str]:
    path = Path(path)
    try:
        return parse_labels(path.read_bytes(), source=str(path))
    except FileNotFoundError:
        raise LabelsMismatch(f"{path}: no such labels file") from None
    except OSError as exc:
        raise LabelsMismatch(f"{path} cannot be read: {exc.strerror or exc}") from exc


def check_labels(
    labels: Iterable[str], *, num_classes: int | None = None, source: str = "labels"
) -> list[str]:
    """``labels`` as a list, or ``LabelsMismatch`` saying exactly what is wrong with them."""
    labels = list(labels)
    if not labels:
        raise LabelsMismatch(f"{source} holds no labels; it needs one label per model output")
    for position, label in enumerate(labels, start=1):
        if not isinstance(label, str):
            raise LabelsMismatch(f"{source}: label {position} is {label!r}, not a string")
        if not label.strip():
            raise LabelsMismatch(
                f"{source}: label {position} is blank; the Android app would count it as a "
                "class and the iOS app would skip it, so their outputs would disagree"
            )
        if any(ch in label for ch in "\n\r\x00"):
            raise LabelsMismatch(
                f"{source}: label {position} {label!r} contains a line break or NUL; "
                "labels.txt holds one label per line"
            )
        if label != label.strip():
            raise LabelsMismatch(
                f"{source}: label {position} {label!r} has leading or trailing spaces; remove them"
            )
    seen: dict[str, int] = {}
    for position, label in enumerate(labels, start=1):
        if label in seen:
            raise LabelsMismatch(
                f"{source}: label {label!r} appears twice (lines {seen[label]} and {position})"
            )
        seen[label] = position
    if num_classes is not None and len(labels) != num_classes:
        raise LabelsMismatch(
            f"{source} has {len(labels)} labels but the model has {num_classes} outputs; "
            "use the labels file written with this model (Train's retrained_labels.txt), "
            "in the model's output order"
        )
    return labels
