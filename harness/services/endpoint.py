"""Where a broker is and how to log in: the read interface shared by started and external brokers.

A rig file may name an existing broker as ``mqtt://host:port`` or ``mqtts://host:port`` (TLS),
optionally with ``user:password@`` and a CA / client certificate. :func:`parse_broker_url` turns
the URL into a :class:`BrokerEndpoint`; bad input raises :class:`~harness.errors.ConfigError`
with one line naming the field and what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import unquote, urlsplit

from harness.errors import ConfigError

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


@dataclass(frozen=True)
class TLSConfig:
    """TLS settings for a broker connection (paths are PEM files)."""

    ca_cert: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    insecure: bool = False  # skip host-name verification (self-signed lab brokers)

    def validate(self) -> None:
        for field in ("ca_cert", "client_cert", "client_key"):
            value = getattr(self, field)
            if value is not None and not Path(value).is_file():
                raise ConfigError(f"broker.tls.{field}: expected a readable PEM file, got {value!r}")
        if (self.client_cert is None) != (self.client_key is None):
            raise ConfigError("broker.tls.client_key: a client certificate needs both client_cert and client_key")


@dataclass(frozen=True)
class BrokerEndpoint:
    """Host, port and credentials of an MQTT broker."""

    host: str
    port: int
    tls: TLSConfig | None = None
    username: str | None = None
    password: str | None = None

    @property
    def url(self) -> str:
        scheme = "mqtts" if self.tls is not None else "mqtt"
        return f"{scheme}://{self.host}:{self.port}"

    def __str__(self) -> str:
        return self.url


def parse_broker_url(
    url: str,
    *,
    tls: TLSConfig | None = None,
    username: str | None = None,
    password: str | None = None,
) -> BrokerEndpoint:
    """``mqtt://[user[:password]@]host[:port]`` or ``mqtts://...`` into an endpoint.

    Explicit ``username``/``password`` arguments win over the URL's; ``mqtts`` without a ``tls``
    argument means TLS verified against the system's CA store.
    """
    if not isinstance(url, str) or "://" not in url:
        raise ConfigError(f"broker.url: expected 'mqtt://host:port' or 'mqtts://host:port', got {url!r}")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ConfigError(f"broker.url: expected scheme mqtt or mqtts, got {parts.scheme!r} in {url!r}")
    if not parts.hostname:
        raise ConfigError(f"broker.url: expected a host name, got {url!r}")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        raise ConfigError(f"broker.url: expected a port number 1..65535, got {url!r}") from None
    if parts.path not in ("", "/") or parts.query:
        raise ConfigError(f"broker.url: expected no path or query, got {url!r}")
    if scheme == "mqtts" and tls is None:
        tls = TLSConfig()
    if tls is not None:
        tls.validate()
    user = username if username is not None else (unquote(parts.username) if parts.username else None)
    pwd = password if password is not None else (unquote(parts.password) if parts.password else None)
    return BrokerEndpoint(host=parts.hostname, port=port, tls=tls, username=user, password=pwd)


def with_credentials(endpoint: BrokerEndpoint, username: str | None, password: str | None) -> BrokerEndpoint:
    """The same endpoint logging in as someone else."""
    return replace(endpoint, username=username, password=password)
