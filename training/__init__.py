"""Embed and Train: MobileNet embeddings of every image, and a classifier on top of them; and
``runtime``, how every stage script runs (TensorFlow's start-up noise muted, one error line).

Imports point one way: ``training`` imports ``pipelines`` only.
"""
