"""The optional kernel backend: detection, ``tc netem`` command lines, and backend selection.

Where the kernel has ``sch_netem`` and the harness may use ``tc`` (root or CAP_NET_ADMIN), a
packet-level backend can stand behind the same parameters as the userspace point.
:func:`kernel_netem_available` probes for it without touching the machine's interfaces (the
probe runs ``tc qdisc add dev lo root netem`` inside a private network namespace), and
:func:`select_backend` falls back to the userspace point with that reason when it is missing.
:func:`netem_args` renders validated :class:`LinkParams` as ``tc netem`` arguments, so the
parameters mean the same thing on both backends.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from harness.errors import ConfigError, RigError
from harness.netmodel.params import LinkParams

PROBE_TIMEOUT = 5.0
CAP_NET_ADMIN = 12
BACKENDS = ("auto", "userspace", "kernel")

Runner = Callable[..., "subprocess.CompletedProcess[str]"]


def _has_net_admin() -> bool:
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return True
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) & (1 << CAP_NET_ADMIN))
    except OSError:
        return False
    return False


def kernel_netem_available(runner: Runner = subprocess.run) -> tuple[bool, str]:
    """Whether ``tc qdisc ... netem`` works here, and a one-line reason either way."""
    tc = shutil.which("tc")
    if tc is None:
        return False, "kernel netem unavailable: 'tc' (iproute2) is not installed"
    if not _has_net_admin():
        return False, "kernel netem unavailable: changing qdiscs needs root or CAP_NET_ADMIN"
    unshare = shutil.which("unshare")
    if unshare is None:
        if Path("/sys/module/sch_netem").exists():
            return True, "sch_netem is loaded (not probed: 'unshare' is missing)"
        return False, "kernel netem unavailable: sch_netem is not loaded and 'unshare' is missing to probe"
    cmd = [unshare, "--net", tc, "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"]
    try:
        done = runner(cmd, capture_output=True, text=True, timeout=PROBE_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return False, f"kernel netem unavailable: probe '{' '.join(cmd)}' timed out after {PROBE_TIMEOUT:g}s"
    except OSError as exc:
        return False, f"kernel netem unavailable: probe could not run ({exc})"
    if done.returncode == 0:
        return True, "tc qdisc netem works (probed in a private network namespace)"
    detail = (done.stderr or done.stdout or "").strip().splitlines()
    why = detail[-1] if detail else f"exit status {done.returncode}"
    return False, f"kernel netem unavailable: 'tc qdisc add ... netem' failed: {why} (is sch_netem built?)"


def select_backend(requested: str = "auto", runner: Runner = subprocess.run) -> tuple[str, str]:
    """``(backend, message)``: ``"userspace"`` or ``"kernel"``.

    ``auto`` uses the userspace point, which needs no privileges and behaves the same for a twin
    and a board; ``kernel`` insists on ``tc netem`` and raises :class:`RigError` with the reason
    when it is not there. Asking for ``kernel`` where it is missing is an error, not a silent swap;
    ``auto`` reports why the kernel backend was not an option.
    """
    if requested not in BACKENDS:
        raise ConfigError(f"backend: expected one of {', '.join(BACKENDS)}, got {requested!r}")
    if requested == "userspace":
        return "userspace", "userspace impairment point (requested)"
    available, reason = kernel_netem_available(runner)
    if requested == "kernel":
        if not available:
            raise RigError(reason)
        return "kernel", reason
    if available:
        return "userspace", f"userspace impairment point (auto; kernel netem also usable: {reason})"
    return "userspace", f"userspace impairment point (auto; {reason})"


def _pct(value: float) -> str:
    return f"{value * 100:g}%"


def _time(seconds: float) -> str:
    return f"{seconds * 1e6:.0f}us"


def netem_args(params: LinkParams) -> list[str]:
    """The ``tc qdisc ... netem`` arguments that configure the kernel as ``params`` says."""
    args: list[str] = []
    if params.delay or params.jitter:
        args += ["delay", _time(params.delay)]
        if params.jitter:
            args.append(_time(params.jitter))
            if params.delay_correlation:
                args.append(_pct(params.delay_correlation))
            if params.distribution != "uniform":
                args += ["distribution", params.distribution]
    if params.gemodel is not None:
        ge = params.gemodel
        args += ["loss", "gemodel", _pct(ge.p), _pct(ge.r), _pct(ge.bad_loss), _pct(ge.good_loss)]
    elif params.loss:
        args += ["loss", "random", _pct(params.loss)]
        if params.loss_correlation:
            args.append(_pct(params.loss_correlation))
    for name in ("duplicate", "corrupt"):
        value = getattr(params, name)
        if value:
            args += [name, _pct(value)]
            corr = getattr(params, f"{name}_correlation")
            if corr:
                args.append(_pct(corr))
    if params.reorder:
        args += ["reorder", _pct(params.reorder)]
        if params.reorder_correlation:
            args.append(_pct(params.reorder_correlation))
        if params.gap:
            args += ["gap", str(params.gap)]
    if params.rate:
        args += ["rate", f"{params.rate:.0f}bit"]
    return args


def tc_command(dev: str, params: LinkParams, *, tc: str = "tc", verb: str = "replace") -> Sequence[str]:
    """``tc qdisc replace dev DEV root netem ...`` for ``params`` (the egress of ``dev``)."""
    return [tc, "qdisc", verb, "dev", dev, "root", "netem", *netem_args(params)]
