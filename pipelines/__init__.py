"""Tulip's base layer: the Pachyderm-shaped data model, the embedded store and engine,
pipeline specs, and the worker API that pipeline code runs against.

Imports point one way: every other Tulip package may import ``pipelines``; ``pipelines``
imports none of them.
"""

__version__ = "0.1.0"
