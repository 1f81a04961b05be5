"""The ``tulip`` command line, the demo and the synthetic data generator. Nothing imports this."""

from pipelines import __version__

__all__ = ["__version__"]
