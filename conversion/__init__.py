"""Convert: a trained Keras model to TensorFlow Lite variants, verified against the original,
behind the gate (``conversion.gate``), which the mobile export asks too.

Imports point one way: ``conversion`` imports ``training`` and ``pipelines`` only.
"""
