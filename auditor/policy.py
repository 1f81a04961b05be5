"""Audit policy: which checks run, how severe their findings are, and their thresholds.

A policy file (TOML or JSON) overrides the defaults below, one table per check::

    # tulip-policy.toml
    [label_issue]
    severity = "info"          # per-image issues: review queue only

    [class_overlap]
    threshold = 0.6

    [drift]
    enabled = false

    [audit]
    seed = 1

Keys not listed in ``DEFAULTS`` are refused with an error that names them, so a typo never
silently turns a check back to its default. The verdict is the worst severity found: any
``fail`` finding fails the audit, else any ``warn`` warns, else it passes (``info`` is free).

Default severities: a whole-class problem fails (``class_overlap``, ``lookalike_class``, and a
``cross_class_duplicate`` covering ``fail_fraction`` of a class); per-image and
review-worthy findings warn (``label_issue``, ``new_label``, ``unreadable_file``,
``class_imbalance``, ``drift``, ``split_leakage``, single ``cross_class_duplicate`` pictures);
copies within a class are ``info``. The thresholds are the calibrated ones each check module
documents; ``near_threshold`` follows the embeddings' backbone
(:data:`auditor.neighbours.NEAR_DUPLICATE_BY_ARCHITECTURE`) unless the policy file sets it.
"""

from __future__ import annotations

import copy
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pipelines.errors import TulipError

from .neighbours import (
    EXACT_BELOW,
    NEAR_DUPLICATE,
    NEAR_DUPLICATE_BY_ARCHITECTURE,
    near_duplicate_threshold,
)
from .sampling import SAMPLE_PER_CLASS

SEVERITY_VALUES = ("info", "warn", "fail")
NEIGHBOUR_METHODS = ("auto", "exact", "hnsw")

DEFAULTS: dict[str, dict[str, Any]] = {
    "audit": {
        "seed": 0,  # seeds every random choice: same data, same findings
        "dims": 0,  # whitened components; 0 = 6 per class, between 32 and 128
        "projection_points": 2000,  # at most this many points in the report's 2-D scatter
        # BLAS threads during the audit; 0 = the library default. Its matrices are small, and
        # on a shared machine multi-threaded BLAS spin-waits: 1 thread was 10x faster under load
        "threads": 1,
        # nearest neighbours: "auto" (exact below exact_below rows, HNSW above), "exact", "hnsw"
        "neighbours": "auto",
        "exact_below": EXACT_BELOW,
        "ann_threads": 0,  # threads for the HNSW graph; 0 = every core
    },
    "unreadable_file": {"enabled": True, "severity": "warn"},
    "duplicate": {"enabled": True, "severity": "info", "near_threshold": NEAR_DUPLICATE},
    "cross_class_duplicate": {
        "enabled": True,
        "severity": "warn",
        "class_severity": "fail",
        "fail_fraction": 0.5,
        "near_threshold": NEAR_DUPLICATE,
    },
    "split_leakage": {"enabled": True, "severity": "warn", "near_threshold": NEAR_DUPLICATE},
    "class_overlap": {
        "enabled": True,
        "severity": "fail",
        "threshold": 0.5,
        "folds": 5,
        "ridge": 1.0,
        "min_images": 5,
        "sample_per_class": SAMPLE_PER_CLASS,  # rows a class is tested on at most; 0 = all
    },
    "lookalike_class": {
        "enabled": True,
        "severity": "fail",
        "threshold": 0.5,
        "candidates": 3,
        "folds": 5,
        "ridge": 1.0,
        "min_images": 5,
        "sample_per_class": SAMPLE_PER_CLASS,
    },
    "new_label": {"enabled": True, "severity": "warn"},
    "label_issue": {
        "enabled": True,
        "severity": "warn",
        "k": 10,
        "temperature": 0.05,
        "regularization": 0.01,
        "folds": 5,
        "queue_factor": 1.2,
    },
    "batch_contamination": {
        "enabled": True,
        "severity": "warn",
        "class_severity": "fail",
        "warn_share": 0.15,
        "fail_share": 0.5,
        "alpha": 0.01,
        "min_added": 5,
        "min_images": 5,
        "regularization": 0.01,
    },
    "class_imbalance": {"enabled": True, "severity": "warn", "max_ratio": 5.0, "min_images": 20},
    "drift": {
        "enabled": True,
        "severity": "warn",
        "min_effect": 0.075,
        "alpha": 0.01,
        "min_added": 5,
        "permutations": 200,
        "sample_per_class": SAMPLE_PER_CLASS,
    },
}


class InvalidPolicy(TulipError):
    """A policy file that cannot be read, or names a check, key or value Tulip does not know,
    or gives a value outside the range the check accepts."""


@dataclass(frozen=True)
class Range:
    """The values a numeric setting accepts; ``above`` makes the low end exclusive."""

    low: float | None = None
    high: float | None = None
    above: bool = False
    meaning: str = ""

    def admits(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.above else value < self.low):
            return False
        return self.high is None or value <= self.high

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            text = (
                f"above {self.low:g} and at most {self.high:g}"
                if self.above
                else f"between {self.low:g} and {self.high:g}"
            )
        elif self.low is not None:
            text = f"{'above' if self.above else 'at least'} {self.low:g}"
        else:
            text = f"at most {self.high:g}"
        return text + (f" ({self.meaning})" if self.meaning else "")


# The range of every numeric setting, by key (the same key means the same thing in each check).
RANGES: dict[str, Range] = {
    "near_threshold": Range(-1.0, 1.0, meaning="a cosine similarity"),
    "threshold": Range(0.0, 1.0, meaning="an overlap score"),
    "fail_fraction": Range(0.0, 1.0, meaning="a share of the class"),
    "warn_share": Range(0.0, 1.0, above=True, meaning="a share of the batch"),
    "fail_share": Range(0.0, 1.0, above=True, meaning="a share of the batch"),
    "alpha": Range(0.0, 1.0, above=True, meaning="a p-value"),
    "min_effect": Range(0.0),
    "folds": Range(2),
    "k": Range(1),
    "candidates": Range(1),
    "min_images": Range(1),
    "min_added": Range(1),
    "permutations": Range(1),
    "ridge": Range(0.0, above=True),
    "temperature": Range(0.0, above=True),
    "regularization": Range(0.0),
    "queue_factor": Range(0.0, above=True),
    "max_ratio": Range(1.0, meaning="largest class over smallest"),
    "seed": Range(0),
    "dims": Range(0, meaning="0 picks 6 per class"),
    "projection_points": Range(0),
    "threads": Range(0, meaning="0 is the library default"),
    "exact_below": Range(0, meaning="rows below which neighbours are exact"),
    "ann_threads": Range(0, meaning="0 is every core"),
    "sample_per_class": Range(0, meaning="0 never samples"),
}


def _check_value(section: str, key: str, value: Any, default: Any, source: str | None) -> Any:
    where = f"[{section}] {key}" + (f" in {source}" if source else "")
    if key in ("severity", "class_severity"):
        if value not in SEVERITY_VALUES:
            raise InvalidPolicy(
                f"policy {where} = {value!r} is not a severity; use one of {list(SEVERITY_VALUES)}"
            )
        return value
    if key == "neighbours":
        if value not in NEIGHBOUR_METHODS:
            raise InvalidPolicy(f"policy {where} = {value!r}; use one of {list(NEIGHBOUR_METHODS)}")
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise InvalidPolicy(f"policy {where} must be true or false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidPolicy(f"policy {where} must be an integer, got {value!r}")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidPolicy(f"policy {where} must be a number, got {value!r}")
        value = float(value)
    else:
        return value
    allowed = RANGES.get(key, Range(0))
    if value != value or not allowed.admits(value):  # NaN is in no range
        raise InvalidPolicy(
            f"policy {where} = {value!r} is out of range: it must be {allowed.describe()}"
        )
    return value


@dataclass(frozen=True)
class Policy:
    """The effective settings: ``DEFAULTS`` with a policy file's overrides applied."""

    settings: Mapping[str, Mapping[str, Any]] = field(
        default_factory=lambda: copy.deepcopy(DEFAULTS)
    )
    source: str | None = None
    #: (check, key) pairs a policy file set, which calibrated per-backbone defaults never replace
    overridden: frozenset[tuple[str, str]] = frozenset()

    @classmethod
    def from_mapping(cls, overrides: Mapping[str, Any], *, source: str | None = None) -> Policy:
        """Defaults overridden by ``overrides`` ({section: {key: value}}), validated."""
        where = f" in {source}" if source else ""
        if not isinstance(overrides, Mapping):
            raise InvalidPolicy(
                f"a policy must be a table of checks{where}, got {type(overrides).__name__}"
            )
        settings = copy.deepcopy(DEFAULTS)
        for section, values in overrides.items():
            if section not in DEFAULTS:
                raise InvalidPolicy(
                    f"unknown check {section!r}{where}; known: {', '.join(sorted(DEFAULTS))}"
                )
            if not isinstance(values, Mapping):
                raise InvalidPolicy(f"policy [{section}]{where} must be a table of settings")
            for key, value in values.items():
                if key not in DEFAULTS[section]:
                    raise InvalidPolicy(
                        f"unknown setting {key!r} for [{section}]{where}; "
                        f"known: {', '.join(sorted(DEFAULTS[section]))}"
                    )
                settings[section][key] = _check_value(
                    section, key, value, DEFAULTS[section][key], source
                )
        overridden = frozenset(
            (section, key) for section, values in overrides.items() for key in values
        )
        return cls(settings=settings, source=source, overridden=overridden)

    def for_architecture(self, architecture: str | None) -> Policy:
        """This policy with the near-copy thresholds calibrated for the embeddings' backbone,
        except where the policy file chose its own."""
        near = near_duplicate_threshold(architecture)
        settings = {check: dict(values) for check, values in self.settings.items()}
        for check, values in settings.items():
            if "near_threshold" in values and (check, "near_threshold") not in self.overridden:
                values["near_threshold"] = near
        return replace(self, settings=settings)

    def enabled(self, check: str) -> bool:
        return bool(self.settings[check].get("enabled", True))

    def options(self, check: str) -> dict[str, Any]:
        """Keyword arguments for the check function (everything but ``enabled``)."""
        return {k: v for k, v in self.settings[check].items() if k != "enabled"}

    @property
    def audit(self) -> Mapping[str, Any]:
        return self.settings["audit"]

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return copy.deepcopy({k: dict(v) for k, v in self.settings.items()})


def load_policy(path: str | Path | None) -> Policy:
    """The policy in a .toml or .json file; the defaults when path is None."""
    if path is None:
        return Policy()
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as e:
        raise InvalidPolicy(f"cannot read policy file {path}: {e.strerror}") from e
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            data = tomllib.loads(text.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
        raise InvalidPolicy(f"policy file {path} is not valid {kind}: {e}") from e
    return Policy.from_mapping(data, source=str(path))


def default_policy_toml() -> str:
    """The defaults as a TOML policy file, to copy and edit."""

    def fmt(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        return repr(v)

    # near_threshold is left commented out: setting it would pin every backbone to one value
    by_backbone = ", ".join(f"{a} {t}" for a, t in NEAR_DUPLICATE_BY_ARCHITECTURE.items())
    lines = []
    for section, values in DEFAULTS.items():
        lines.append(f"[{section}]")
        for k, v in values.items():
            if k == "near_threshold":
                lines.append(f"# {k} = {fmt(v)}  # unset: calibrated per backbone ({by_backbone})")
            else:
                lines.append(f"{k} = {fmt(v)}")
        lines.append("")
    return "\n".join(lines)
