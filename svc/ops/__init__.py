"""Operating the service: Prometheus metrics, the probe server, log lines."""

from .logs import configure_logging
from .metrics import Metrics
from .probes import ProbeServer, Readiness

__all__ = ["Metrics", "ProbeServer", "Readiness", "configure_logging"]
