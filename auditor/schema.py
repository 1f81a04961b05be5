"""The JSON Schema of ``audit.json`` (``tulip.audit/v1``), and a validator for it.

The contract keys of the brief are required and closed; the extra keys (per-class stats, the
overlap matrix, the 2-D projection, timings) are described so that reports can rely on them,
and new top-level keys stay allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auditor.findings import SCHEMA, SEVERITIES

_REF = {
    "type": "object",
    "required": ["repo", "commit"],
    "properties": {
        "repo": {"type": ["string", "null"]},
        "branch": {"type": ["string", "null"]},
        "commit": {"type": ["string", "null"]},
    },
}

_FINDING = {
    "type": "object",
    "required": [
        *("id", "check", "severity", "classes", "score", "files", "introduced_by", "message"),
    ],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
        "check": {"type": "string", "minLength": 1},
        "severity": {"enum": list(SEVERITIES)},
        "classes": {"type": "array", "items": {"type": "string"}},
        "score": {"type": "number"},
        "files": {"type": "array", "items": {"type": "string"}},
        "introduced_by": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["repo", "commit"],
                "properties": {"repo": {"type": "string"}, "commit": {"type": "string"}},
            },
        },
        "message": {"type": "string", "minLength": 1},
        "details": {"type": "object"},
    },
    "allOf": [
        {
            "if": {"properties": {"check": {"const": "label_issue"}}},
            "then": {
                "properties": {
                    "files": {"minItems": 1, "maxItems": 1},
                    "classes": {"minItems": 2, "maxItems": 2},
                }
            },
        }
    ],
}

_MATRIX = {
    "type": "object",
    "required": ["classes", "matrix"],
    "properties": {
        "classes": {"type": "array", "items": {"type": "string"}},
        "matrix": {
            "type": "array",
            "items": {"type": "array", "items": {"type": ["number", "null"]}},
        },
    },
}

AUDIT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://tulip.dev/schema/audit-v1.json",
    "title": "Tulip audit document",
    "type": "object",
    "required": ["schema", "verdict", "data", "reference", "summary", "findings"],
    "properties": {
        "schema": {"const": SCHEMA},
        "verdict": {"enum": ["pass", "warn", "fail"]},
        "data": {**_REF, "required": ["repo", "branch", "commit"]},
        "reference": {"oneOf": [{"type": "null"}, _REF]},
        "previous": {"oneOf": [{"type": "null"}, _REF]},
        "summary": {
            "type": "object",
            "required": ["images", "classes"],
            "properties": {
                "images": {"type": "integer", "minimum": 0},
                "classes": {
                    "type": "object",
                    "additionalProperties": {"type": "integer", "minimum": 0},
                },
            },
        },
        "findings": {"type": "array", "items": _FINDING},
        "class_stats": {"type": "object", "additionalProperties": {"type": "object"}},
        "overlap": {"oneOf": [{"type": "null"}, _MATRIX]},
        "gallery": {"oneOf": [{"type": "null"}, _MATRIX]},
        "projection": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "required": ["x", "y", "label", "path"],
                    "properties": {
                        "x": {"type": "array", "items": {"type": "number"}},
                        "y": {"type": "array", "items": {"type": "number"}},
                        "label": {"type": "array", "items": {"type": "string"}},
                        "path": {"type": "array", "items": {"type": "string"}},
                    },
                },
            ]
        },
        "timings": {"type": "object", "additionalProperties": {"type": "number"}},
        "policy": {"type": "object"},
    },
}


def validate_document(doc: Mapping[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` (naming the failing path) if doc breaks the contract."""
    import jsonschema

    jsonschema.Draft202012Validator(AUDIT_SCHEMA).validate(doc)
