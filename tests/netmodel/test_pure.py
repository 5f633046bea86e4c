"""The link model imports alone: no event loop, no threads, no sockets (harness.sim feeds it too)."""

from __future__ import annotations

import json
import subprocess
import sys

MODULES = ("link", "model", "params", "profiles", "stats", "syntax")
IO = ("asyncio", "threading", "socket", "selectors", "aiohttp", "paho", "harness.drivers")


def test_the_model_pulls_in_no_io_and_no_driver() -> None:
    probe = (
        "import json, sys\n"
        + "".join(f"import harness.netmodel.{name}\n" for name in MODULES)
        + f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {IO!r} or m.startswith('harness.drivers'))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(out.stdout) == []


def test_the_proxy_package_still_offers_the_model_names() -> None:
    """``from harness.drivers.netem import build_params, parse_netem, PROFILES`` (docs/network.md) still works."""
    from harness.drivers import netem
    from harness.netmodel import params, profiles, syntax

    assert netem.build_params is params.build_params
    assert netem.parse_netem is syntax.parse_netem
    assert netem.PROFILES is profiles.PROFILES
