"""The audit checks, one module each: data first, options keyword-only, findings out.

Every check validates its input (``TypeError`` for a wrong type, ``ValueError`` with the
actual shapes), runs on a plain numpy array with no store and no TensorFlow, and returns a
list of :class:`auditor.findings.Finding`.
"""
