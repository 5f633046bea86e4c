"""Network impairment point: a userspace netem between a device and its services.

Public API::

    from harness.drivers.netem import ImpairmentPoint

    with ImpairmentPoint(journal, seed=42) as point:
        host, port = point.add_tcp(("127.0.0.1", broker_port), name="mqtt")
        point.profile("3g")
        with point.impaired(loss="2%"):
            ...
        point.partition("60s")
        point.statistics()

Parameters use ``tc netem`` names and units (see :mod:`harness.netmodel.params` and
``docs/network.md``).
"""

from harness.drivers.netem.backend import NetworkImpairment, open_point
from harness.drivers.netem.kernel import kernel_netem_available, select_backend
from harness.drivers.netem.point import ImpairmentPoint
from harness.netmodel.params import (
    CLEAR,
    DISTRIBUTIONS,
    PARAMETER_NAMES,
    GEModel,
    LinkParams,
    build_params,
)
from harness.netmodel.profiles import PROFILES
from harness.netmodel.syntax import parse_netem

__all__ = [
    "CLEAR",
    "DISTRIBUTIONS",
    "PARAMETER_NAMES",
    "PROFILES",
    "GEModel",
    "ImpairmentPoint",
    "LinkParams",
    "NetworkImpairment",
    "build_params",
    "kernel_netem_available",
    "open_point",
    "parse_netem",
    "select_backend",
]
