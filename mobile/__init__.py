"""Mobile: export audited models to the Android and iOS apps, with provenance inside the file.

From the store: ``source`` (which model a Convert commit holds, with its labels, audit and
data), ``release`` (the gate, then the stamped model into the apps, then the export record),
``identify`` (where a model file came from) and ``release_check`` (the device check on Train's
test split). Below them, no store: ``metadata`` (the manifest inside the file), ``export``
(writing the app folders atomically), ``device_check``, ``predict``, ``preprocess``, ``labels``,
``model_card`` and ``tflite_file``.

Imports point one way: ``mobile`` imports ``conversion`` (the gate), ``auditor`` (the export
ledger, ``auditor.lineage.exports``) and ``pipelines``; only ``reports`` and the CLI import it.
"""
