"""Convert: a trained Keras model to TensorFlow Lite variants, verified against the original.

Imports point one way: ``conversion`` imports ``training`` and ``pipelines`` only.
"""
