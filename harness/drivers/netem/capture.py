"""Packet capture of the device's traffic through the point, written as a pcap for the run folder.

Sniffing needs root or ``CAP_NET_RAW``. :func:`capture_permission` says whether this process has
it, and why not when it has not; :class:`PacketCapture` then either records every packet to or
from the point's ports (scapy ``AsyncSniffer``, written incrementally with ``PcapWriter``) or
stays off and says plainly why. Filtering is done in Python (``lfilter``), so no libpcap or
tcpdump is needed for a BPF compile.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.errors import RigError

CAP_NET_RAW = 13
START_TIMEOUT = 10.0


def capture_permission() -> tuple[bool, str]:
    """``(True, why)`` when this process may sniff, else ``(False, the reason capture is off)``."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return True, "running as root"
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return False, "capture is off: cannot read /proc/self/status to check for CAP_NET_RAW"
    for line in status.splitlines():
        if line.startswith("CapEff:"):
            if int(line.split()[1], 16) & (1 << CAP_NET_RAW):
                return True, "has CAP_NET_RAW"
            break
    uid = os.getuid() if hasattr(os, "getuid") else "?"
    return False, (
        f"capture is off: sniffing needs root or CAP_NET_RAW and this process (uid {uid}) has neither; "
        "run as root or grant it with 'setcap cap_net_raw+ep' on the python binary"
    )


class PacketCapture:
    """Record packets whose TCP/UDP source or destination port is one of ``ports`` into a pcap."""

    def __init__(self, folder: str | os.PathLike[str], ports: Iterable[int], *, iface: str = "lo",
                 filename: str = "netem.pcap") -> None:
        self.path = Path(folder) / filename
        self.ports = frozenset(ports)
        self.iface = iface
        self.packets = 0
        self.reason = ""
        self._sniffer: Any = None
        self._writer: Any = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._sniffer is not None

    def start(self) -> bool:
        """Start sniffing; returns False (with :attr:`reason` set) when capture is not possible."""
        allowed, why = capture_permission()
        if not allowed:
            self.reason = why
            return False
        try:
            from scapy.all import AsyncSniffer  # heavy import: only when a capture is asked for
            from scapy.layers.inet import TCP, UDP
            from scapy.utils import PcapWriter
        except ImportError as exc:  # pragma: no cover - scapy is a dependency
            self.reason = f"capture is off: scapy cannot be imported ({exc})"
            return False
        ports = self.ports

        def wanted(pkt: Any) -> bool:
            for layer in (TCP, UDP):
                if layer in pkt:
                    seg = pkt[layer]
                    return seg.sport in ports or seg.dport in ports
            return False

        def write(pkt: Any) -> None:
            with self._lock:
                if self._writer is not None:
                    self._writer.write(pkt)
                    self._writer.flush()
                    self.packets += 1

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = PcapWriter(str(self.path), append=False, sync=True)
        started = threading.Event()
        sniffer = AsyncSniffer(iface=self.iface, lfilter=wanted, prn=write, store=False,
                               started_callback=started.set)
        try:
            sniffer.start()
        except Exception as exc:  # scapy raises plain Exceptions for socket trouble
            self._close_writer()
            self.reason = f"capture is off: could not open {self.iface} for sniffing ({exc})"
            return False
        if not started.wait(START_TIMEOUT):
            self._close_writer()
            raise RigError(f"netem capture: sniffer on {self.iface} did not start within {START_TIMEOUT:g}s")
        self._sniffer = sniffer
        self.reason = f"capturing on {self.iface} to {self.path} ({why})"
        return True

    def stop(self) -> Path | None:
        """Stop sniffing and close the pcap; returns its path, or None when capture was off."""
        sniffer, self._sniffer = self._sniffer, None
        if sniffer is None:
            return None
        try:
            sniffer.stop(join=True)
        finally:
            self._close_writer()
        return self.path

    def _close_writer(self) -> None:
        with self._lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None

    def __enter__(self) -> PacketCapture:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
