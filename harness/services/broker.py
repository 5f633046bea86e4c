"""The run's MQTT broker: Debian's mosquitto when present, else an embedded amqtt broker.

:meth:`Broker.start` picks a free loopback port, writes the broker's configuration and log into
the run folder, starts the broker as a child process and waits until it *accepts an MQTT client*
(a CONNECT/CONNACK probe, never a sleep). The broker can be stopped and started again on the same
port mid-test, which is a real outage: every client loses its connection. Stops and starts are
journaled as ``injection`` records (``broker-stop`` / ``broker-start``) so telemetry accounting
can attribute lost messages to the outage.

:class:`ExternalBroker` is a broker named by URL in a rig file; it offers the same read interface
(``host``, ``port``, ``url``, ``kind``, ``endpoint``) but cannot be stopped by the harness.

The environment variable ``HARNESS_BROKER`` chooses the broker for the whole run: ``embedded`` hides
mosquitto from the harness (as if it were not installed), ``mosquitto`` requires it (a run that
would fall back to the embedded broker fails instead), ``auto`` or unset picks mosquitto when present.
"""

from __future__ import annotations

import atexit
import contextlib
import getpass
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Literal, Protocol

from harness.errors import CapabilityMissing, ConfigError, RigError
from harness.procs import spawn
from harness.run.journal import Journal
from harness.services.endpoint import BrokerEndpoint, TLSConfig, parse_broker_url
from harness.services.mqtt_client import ProbeRefused, probe

BrokerKind = Literal["auto", "mosquitto", "embedded"]
KINDS = ("auto", "mosquitto", "embedded")
BROKER_ENV = "HARNESS_BROKER"
_SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")
_LOG_TAIL = 5


_LIVE: weakref.WeakSet[Broker] = weakref.WeakSet()


@atexit.register
def _close_leftovers() -> None:
    """A run that forgot to close its brokers stops them cleanly (a killed run: PR_SET_PDEATHSIG does)."""
    for broker in list(_LIVE):
        broker.close()


class BrokerError(RigError):
    """The broker could not be started, stopped or reached."""


class BrokerLike(Protocol):
    """What the collector and tests read from any broker, started or external."""

    @property
    def endpoint(self) -> BrokerEndpoint: ...
    @property
    def kind(self) -> str: ...
    @property
    def url(self) -> str: ...


def forced_kind() -> str | None:
    """The broker ``HARNESS_BROKER`` asks for (``mosquitto`` or ``embedded``), None for auto or unset."""
    value = os.environ.get(BROKER_ENV, "").strip().lower()
    if value in ("", "auto"):
        return None
    if value not in ("mosquitto", "embedded"):
        raise ConfigError(
            f"{BROKER_ENV}={os.environ[BROKER_ENV]!r}: expected one of auto, mosquitto, embedded"
        )
    return value


def find_mosquitto() -> str | None:
    """Path of the mosquitto binary (Debian installs it in /usr/sbin, often not on PATH).

    None when ``HARNESS_BROKER=embedded`` hides it from the harness.
    """
    if forced_kind() == "embedded":
        return None
    path = os.pathsep.join([os.environ.get("PATH", ""), *_SBIN])
    return shutil.which("mosquitto", path=path)


def embedded_available() -> bool:
    """Whether the embedded broker's package (amqtt) is installed."""
    return importlib.util.find_spec("amqtt") is not None


def unavailable_reason(kind: str) -> str | None:
    """Why this machine cannot run ``kind`` (mosquitto or embedded), None when it can."""
    if kind == "mosquitto" and find_mosquitto() is None:
        if forced_kind() == "embedded":
            return f"mosquitto is hidden from the harness by {BROKER_ENV}=embedded"
        if forced_kind() == "mosquitto":
            return None  # required: a test that wants it must fail, not skip
        return "Debian's mosquitto is not installed (apt-get install mosquitto)"
    if kind == "embedded" and not embedded_available():
        return "the embedded broker's package is not installed (pip install amqtt)"
    return None


def available_kinds() -> list[str]:
    """Broker kinds this machine can run, preferred first."""
    kinds = []
    if find_mosquitto():
        kinds.append("mosquitto")
    if embedded_available():
        kinds.append("embedded")
    return kinds


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port the kernel just handed out as free (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _resolve_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ConfigError(f"broker.kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    forced = forced_kind()
    if kind == "auto" and forced == "mosquitto" and not find_mosquitto():
        raise BrokerError(
            f"{BROKER_ENV}=mosquitto requires mosquitto, but no mosquitto binary is on PATH or in /usr/sbin "
            "(apt-get install mosquitto, or unset the variable to fall back to the embedded broker)"
        )
    if kind == "auto":
        kinds = available_kinds()
        if not kinds:
            raise BrokerError(
                "no MQTT broker available: install Debian's mosquitto (apt-get install mosquitto) "
                "or the embedded one (pip install amqtt)"
            )
        return kinds[0]
    if kind == "mosquitto" and not find_mosquitto():
        if forced == "embedded":
            raise BrokerError(f"broker kind 'mosquitto' asked for, but {BROKER_ENV}=embedded hides mosquitto")
        raise BrokerError("broker kind 'mosquitto' asked for, but no mosquitto binary on PATH or in /usr/sbin")
    if kind == "embedded" and not embedded_available():
        raise BrokerError("broker kind 'embedded' asked for, but amqtt is not installed (pip install amqtt)")
    return kind


def _unique_dir(parent: Path, name: str) -> Path:
    for n in range(1, 1000):
        candidate = parent / (name if n == 1 else f"{name}-{n}")
        try:
            candidate.mkdir(parents=True)
            return candidate
        except FileExistsError:
            continue
    raise BrokerError(f"could not make a broker folder under {parent}: 999 {name}-N folders exist")


def mosquitto_config(host: str, port: int, persist_dir: Path) -> str:
    """The mosquitto.conf the harness writes for one run."""
    lines = [
        "# written by the harness for one run",
        f"listener {port} {host}",
        "allow_anonymous true",
        "persistence true",
        f"persistence_location {persist_dir}/",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "log_timestamp_format %Y-%m-%dT%H:%M:%S",
        "connection_messages true",
        "max_queued_messages 100000",
        "max_inflight_messages 100",
        "set_tcp_nodelay true",
    ]
    if os.geteuid() == 0:
        lines.append("user root")  # do not drop to user 'mosquitto': the run folder is ours
    else:
        lines.append(f"user {getpass.getuser()}")
    return "\n".join(lines) + "\n"


class _EndpointView:
    """Where a broker is, read from its endpoint (shared by owned and external brokers)."""

    _endpoint: BrokerEndpoint

    @property
    def endpoint(self) -> BrokerEndpoint:
        return self._endpoint

    @property
    def host(self) -> str:
        return self._endpoint.host

    @property
    def port(self) -> int:
        return self._endpoint.port

    @property
    def url(self) -> str:
        return self._endpoint.url


class Broker(_EndpointView):
    """A broker process the harness owns for one run. Use :meth:`start` to make one."""

    def __init__(self, kind: str, folder: Path, host: str, port: int, journal: Journal | None) -> None:
        self._kind = kind
        self.folder = folder
        self.log_path = folder / "broker.log"
        self._endpoint = BrokerEndpoint(host=host, port=port)
        self._journal = journal
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._closed = False
        self.starts = 0
        self.stops = 0
        _LIVE.add(self)

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def start(
        cls,
        run_dir: str | os.PathLike[str],
        kind: str = "auto",
        journal: Journal | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ready_timeout: float = 15.0,
    ) -> Broker:
        """Start a broker for a run; its config and log go to ``<run_dir>/broker[-N]/``.

        ``port=0`` picks a free port (retried if another process takes it first).
        """
        resolved = _resolve_kind(kind)
        folder = _unique_dir(Path(run_dir), "broker")
        attempts = 3 if port == 0 else 1
        last: BrokerError | None = None
        for _ in range(attempts):
            broker = cls(resolved, folder, host, port or free_port(host), journal)
            try:
                broker._spawn(ready_timeout)
            except BrokerError as exc:
                broker._close_log()
                last = exc
                if "in use" not in str(exc).lower():
                    raise
                continue
            if journal is not None:
                journal.record(
                    "service",
                    service="broker",
                    action="start",
                    broker=resolved,
                    url=broker.url,
                    log=str(broker.log_path),
                )
            return broker
        assert last is not None
        raise last

    # -- read interface -------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        return self._kind


    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running and self._proc is not None else None

    def statistics(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "url": self.url,
            "running": self.running,
            "starts": self.starts,
            "stops": self.stops,
            "log": str(self.log_path),
        }

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Broker {self.kind} {self.url} {state}>"

    # -- outages --------------------------------------------------------------------------------
    def stop(self, *, kill: bool = False, timeout: float = 5.0) -> None:
        """Stop the broker (SIGTERM, or SIGKILL with ``kill=True``): every client is cut off."""
        if not self.running:
            return
        t_stop = time.time()
        self._terminate(kill=kill, timeout=timeout)
        self.stops += 1
        if self._journal is not None:
            self._journal.record(
                "injection", t=t_stop, action="broker-stop", params={"kind": self.kind, "port": self.port, "kill": kill}
            )

    def start_again(self, timeout: float = 15.0) -> None:
        """Start the stopped broker on the same port and wait until it accepts clients."""
        if self._closed:
            raise BrokerError(f"broker {self.url} was closed; start a new one with Broker.start()")
        if self.running:
            return
        self._spawn(timeout)
        if self._journal is not None:
            self._journal.record("injection", action="broker-start", params={"kind": self.kind, "port": self.port})

    def restart(self, *, kill: bool = False, timeout: float = 15.0) -> None:
        """Stop and start again at once (a broker crash/restart)."""
        self.stop(kill=kill)
        self.start_again(timeout)

    @contextlib.contextmanager
    def outage(self, duration: float | None = None, *, kill: bool = False) -> Iterator[Broker]:
        """Broker down for the ``with`` body, and for at least ``duration`` seconds if given."""
        began = time.monotonic()
        self.stop(kill=kill)
        try:
            yield self
        finally:
            if duration is not None:
                remaining = duration - (time.monotonic() - began)
                if remaining > 0:
                    time.sleep(remaining)  # the outage's length is the injected fault itself
            self.start_again()

    # -- teardown -------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the broker for good and release its log. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        was_running = self.running
        self._terminate(kill=False, timeout=5.0)
        self._close_log()
        if self._journal is not None and was_running:
            self._journal.record("service", service="broker", action="stop", broker=self.kind, url=self.url)

    def __enter__(self) -> Broker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------------
    def _command(self) -> list[str]:
        if self.kind == "mosquitto":
            persist = self.folder / "persist"
            persist.mkdir(exist_ok=True)
            conf = self.folder / "mosquitto.conf"
            conf.write_text(mosquitto_config(self.host, self.port, persist), encoding="utf-8")
            binary = find_mosquitto()
            if binary is None:
                raise BrokerError("mosquitto binary disappeared from the machine")
            return [binary, "-c", str(conf)]
        return [sys.executable, "-m", "harness.services.embedded_broker", "--host", self.host, "--port", str(self.port)]

    def _spawn(self, timeout: float) -> None:
        command = self._command()
        if self._log is None:
            self._log = open(self.log_path, "ab")  # noqa: SIM115 - kept open across restarts
        self._log.write(f"--- harness: starting {self.kind} on {self.url}: {' '.join(command)}\n".encode())
        self._log.flush()
        self._proc = spawn(  # dies with the harness, even on SIGKILL (PR_SET_PDEATHSIG)
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C on the terminal is the harness's to handle, not the broker's
            cwd=self.folder,
        )
        self._await_ready(timeout)
        self.starts += 1

    def _await_ready(self, timeout: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while True:
            code = self._proc.poll()
            if code is not None:
                self._proc = None
                raise BrokerError(
                    f"{self.kind} broker exited with code {code} before accepting clients on "
                    f"{self.url}; last log lines: {self.log_tail()}"
                )
            try:
                probe(self.endpoint, timeout=max(0.2, min(2.0, deadline - time.monotonic())))
                return
            except ProbeRefused as exc:
                self._terminate(kill=True, timeout=5.0)
                raise BrokerError(f"{self.kind} broker on {self.url} refused the harness: {exc}") from None
            except OSError as exc:
                last_error = exc
            if time.monotonic() >= deadline:
                self._terminate(kill=True, timeout=5.0)
                raise BrokerError(
                    f"timed out after {timeout:g}s waiting for the {self.kind} broker to accept an MQTT "
                    f"client on {self.url} (last attempt: {last_error}); last log lines: {self.log_tail()}"
                )
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=0.05)  # wakes at once if the broker dies

    def _terminate(self, *, kill: bool, timeout: float) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = _LOG_TAIL) -> str:
        """The last lines of the broker's log, joined with `` | ``."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "<no log>"
        tail = [line for line in text.splitlines() if line.strip()][-lines:]
        return " | ".join(tail) or "<empty log>"


class ExternalBroker(_EndpointView):
    """A broker the rig names by URL; the harness connects to it but does not own it."""

    kind = "external"

    def __init__(
        self,
        url: str,
        *,
        ca_cert: str | None = None,
        client_cert: str | None = None,
        client_key: str | None = None,
        insecure: bool = False,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        tls = None
        if ca_cert or client_cert or client_key or insecure:
            tls = TLSConfig(ca_cert=ca_cert, client_cert=client_cert, client_key=client_key, insecure=insecure)
        self._endpoint = parse_broker_url(url, tls=tls, username=username, password=password)


    def check(self, timeout: float = 10.0) -> None:
        """Wait until the broker accepts an MQTT client with these credentials."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                probe(self.endpoint, timeout=max(0.2, min(2.0, deadline - time.monotonic())))
                return
            except ProbeRefused as exc:
                raise BrokerError(f"external broker {self.url} refused the harness: {exc}") from None
            except OSError as exc:
                last = exc
                time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))  # retry interval of a bounded poll
        raise BrokerError(
            f"timed out after {timeout:g}s waiting for external broker {self.url} to accept an MQTT "
            f"client; last attempt: {last}"
        )

    def _unsupported(self, what: str) -> CapabilityMissing:
        return CapabilityMissing(f"cannot {what} external broker {self.url}: the harness does not own it")

    def stop(self, *, kill: bool = False, timeout: float = 5.0) -> None:
        raise self._unsupported("stop")

    def start_again(self, timeout: float = 15.0) -> None:
        raise self._unsupported("start")

    def restart(self, *, kill: bool = False, timeout: float = 15.0) -> None:
        raise self._unsupported("restart")

    def outage(self, duration: float | None = None, *, kill: bool = False) -> contextlib.AbstractContextManager[None]:
        raise self._unsupported("cause an outage of")

    def close(self) -> None:
        """Nothing to release: the broker is not ours."""

    def __repr__(self) -> str:
        return f"<ExternalBroker {self.url}>"
