"""A protocol double of pachd: Pachyderm's gRPC API served in-process, for tests only.

It exists only because pachd needs Kubernetes (and Pachyderm's own test server needs Docker),
neither of which runs here. ``pipelines.pachyderm.PachydermBackend`` is tested through the real
``pachyderm_sdk`` client over a real gRPC channel against this server.
"""

from .server import PachdProtocolDouble
from .state import DoubleJob

__all__ = ["DoubleJob", "PachdProtocolDouble"]
