"""Packet capture of the device's traffic through the point, written as a pcap for the run folder.

Sniffing needs root or ``CAP_NET_RAW``. :func:`capture_permission` says whether this process has
it, and why not when it has not; :class:`PacketCapture` then either records every packet to or
from the point's ports (scapy ``AsyncSniffer``, written incrementally with ``PcapWriter``) or
stays off and says plainly why. Packets are selected in the kernel by a classic BPF port filter
built by hand (:func:`port_filter`: scapy would need libpcap or tcpdump to compile one, and our
machines have neither), and double-checked in Python.
"""

from __future__ import annotations

import ctypes
import os
import socket
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.errors import RigError

CAP_NET_RAW = 13
START_TIMEOUT = 10.0
SO_ATTACH_FILTER = 26

# classic BPF opcodes (linux/filter.h)
_LDH_ABS, _LDB_ABS, _LDH_IND, _LDXB_MSH = 0x28, 0x30, 0x48, 0xB1
_JEQ, _JSET, _RET = 0x15, 0x45, 0x06


class _Insn(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_Insn))]


def port_filter(ports: Iterable[int]) -> list[tuple[int, int, int, int]]:
    """Classic BPF for Ethernet framing (as Linux ``lo``): IPv4 TCP/UDP with a source or
    destination port in ``ports`` (the program ``tcpdump -dd 'ip and (tcp or udp) and port P'``
    would compile; built by hand because scapy needs libpcap or tcpdump to compile filters)."""
    ports = sorted(set(ports))
    n = len(ports)
    size = 9 + 1 + n + n + 2  # header, sport load, sport tests, dport load, dport tests, drop, accept
    drop, accept = size - 2, size - 1

    def to(target: int, at: int) -> int:
        return target - at - 1

    prog: list[tuple[int, int, int, int]] = [
        (_LDH_ABS, 0, 0, 12),  # 0: ethertype
        (_JEQ, 0, to(drop, 1), 0x0800),  # 1: IPv4
        (_LDB_ABS, 0, 0, 23),  # 2: protocol
        (_JEQ, 1, 0, 6),  # 3: TCP
        (_JEQ, 0, to(drop, 4), 17),  # 4: UDP
        (_LDH_ABS, 0, 0, 20),  # 5: flags + fragment offset
        (_JSET, to(drop, 6), 0, 0x1FFF),  # 6: not a later fragment
        (_LDXB_MSH, 0, 0, 14),  # 7: X = IP header length
        (_LDH_IND, 0, 0, 14),  # 8: source port
    ]
    for port in ports:
        at = len(prog)
        prog.append((_JEQ, to(accept, at), 0, port))
    prog.append((_LDH_IND, 0, 0, 16))  # destination port
    for port in ports:
        at = len(prog)
        prog.append((_JEQ, to(accept, at), 0, port))
    prog.append((_RET, 0, 0, 0))  # drop
    prog.append((_RET, 0, 0, 0x40000))  # accept, whole packet
    assert len(prog) == size
    return prog


def attach_filter(sock: socket.socket, program: list[tuple[int, int, int, int]]) -> None:
    """Attach a classic BPF ``program`` to ``sock`` so the kernel drops unwanted packets."""
    insns = (_Insn * len(program))(*(_Insn(*i) for i in program))
    prog = _Prog(len(program), ctypes.cast(insns, ctypes.POINTER(_Insn)))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, bytes(prog))


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
        self._socket: Any = None
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
        try:
            from scapy.config import conf

            listen = conf.L2listen(iface=self.iface)
        except Exception as exc:  # scapy raises plain Exceptions for socket trouble
            self._close_writer()
            self.reason = f"capture is off: could not open {self.iface} for sniffing ({exc})"
            return False
        kernel_filter = "kernel BPF port filter"
        try:
            attach_filter(listen.ins, port_filter(ports))
        except (OSError, AttributeError) as exc:  # the Python filter below still selects packets
            kernel_filter = f"no kernel filter ({exc}), filtering in Python"
        sniffer = AsyncSniffer(opened_socket=listen, lfilter=wanted, prn=write, store=False,
                               started_callback=started.set)
        sniffer.start()
        self._socket = listen
        self._sniffer = sniffer
        if not started.wait(START_TIMEOUT):
            self.stop()
            raise RigError(f"netem capture: sniffer on {self.iface} did not start within {START_TIMEOUT:g}s")
        self.reason = f"capturing on {self.iface} to {self.path} ({why}; {kernel_filter})"
        return True

    def stop(self) -> Path | None:
        """Stop sniffing and close the pcap; returns its path, or None when capture was off."""
        sniffer, self._sniffer = self._sniffer, None
        if sniffer is None:
            return None
        try:
            sniffer.stop(join=True)
        finally:
            if self._socket is not None:
                self._socket.close()
                self._socket = None
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
