"""One validator for what every check takes: a 2-D float matrix and per-row labels and paths.

As in cleanlab, a wrong type is a ``TypeError`` and a wrong shape a ``ValueError`` that gives
the actual numbers, so that a caller sees at once which argument is off and by how much.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_CHUNK = 65_536


def as_matrix(vectors: object, *, name: str = "vectors", rows: int | None = None) -> np.ndarray:
    """vectors as a finite float32 (n, d) array; ``rows`` pins n when given."""
    if not isinstance(vectors, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(vectors).__name__}")
    if vectors.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n, d), got shape {vectors.shape}")
    if not np.issubdtype(vectors.dtype, np.number):
        raise TypeError(f"{name} must hold numbers, got dtype {vectors.dtype}")
    if rows is not None and vectors.shape[0] != rows:
        raise ValueError(f"{name} has {vectors.shape[0]} rows but {rows} were expected")
    out = np.asarray(vectors, dtype=np.float32)  # no copy of a float32 array or memory map
    bad = 0
    for start in range(0, len(out), _CHUNK):  # chunked: no (n, d) temporary
        bad += int((~np.isfinite(out[start : start + _CHUNK])).any(axis=1).sum())
    if bad:
        first = next(
            start + int(np.flatnonzero(~np.isfinite(out[start : start + _CHUNK]).all(axis=1))[0])
            for start in range(0, len(out), _CHUNK)
            if not np.isfinite(out[start : start + _CHUNK]).all()
        )
        raise ValueError(
            f"{name} has {bad} rows with NaN or infinite values (the first is row {first})"
        )
    return out


def as_strings(values: object, *, name: str, rows: int) -> list[str]:
    """values as a list of ``rows`` strings."""
    if isinstance(values, str) or not isinstance(values, Sequence | np.ndarray):
        raise TypeError(f"{name} must be a sequence of strings, got {type(values).__name__}")
    out = list(values)
    if len(out) != rows:
        raise ValueError(f"{name} has {len(out)} entries but vectors has {rows} rows")
    for v in out:
        if not isinstance(v, str | np.str_):
            raise TypeError(f"{name} must hold strings, got {type(v).__name__} ({v!r})")
    return [str(v) for v in out]


def check_data(
    vectors: object, labels: object, paths: object
) -> tuple[np.ndarray, list[str], list[str]]:
    """The (vectors, labels, paths) triple every embedding check starts from, validated."""
    x = as_matrix(vectors)
    return (
        x,
        as_strings(labels, name="labels", rows=len(x)),
        as_strings(paths, name="paths", rows=len(x)),
    )


def check_severity(severity: str) -> str:
    if severity not in ("info", "warn", "fail"):
        raise ValueError(f"severity must be 'info', 'warn' or 'fail', got {severity!r}")
    return severity


def check_fraction(value: float, *, name: str, low: float = 0.0, high: float = 1.0) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}")
    return float(value)
