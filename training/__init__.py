"""Embed and Train: MobileNet embeddings of every image, and a classifier on top of them.

Imports point one way: ``training`` imports ``pipelines`` only.
"""
