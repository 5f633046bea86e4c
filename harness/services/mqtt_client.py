"""paho-mqtt clients configured from a :class:`BrokerEndpoint`, and a connection probe.

The probe speaks just enough MQTT 3.1.1 (CONNECT, CONNACK, DISCONNECT) over a plain or TLS
socket to tell that a broker is *accepting clients*, which is what readiness means; a listening
socket alone is not enough.
"""

from __future__ import annotations

import os
import socket
import ssl
import struct

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from harness.services.endpoint import BrokerEndpoint, TLSConfig

_MQTT_PROTOCOLS = {"3.1.1": mqtt.MQTTv311, "5": mqtt.MQTTv5}


def ssl_context(tls: TLSConfig) -> ssl.SSLContext:
    """A client SSL context for the endpoint's TLS settings."""
    ctx = ssl.create_default_context(cafile=tls.ca_cert)
    if tls.client_cert is not None:
        ctx.load_cert_chain(tls.client_cert, tls.client_key)
    if tls.insecure:
        ctx.check_hostname = False
    return ctx


def make_client(
    endpoint: BrokerEndpoint,
    client_id: str,
    *,
    clean_session: bool = True,
    protocol: str = "3.1.1",
) -> mqtt.Client:
    """A paho client (callback API v2) with the endpoint's TLS and credentials applied."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=clean_session if protocol != "5" else None,
        protocol=_MQTT_PROTOCOLS[protocol],
    )
    if endpoint.tls is not None:
        client.tls_set_context(ssl_context(endpoint.tls))
    if endpoint.username is not None:
        client.username_pw_set(endpoint.username, endpoint.password)
    return client


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def connect_packet(client_id: str, username: str | None = None, password: str | None = None) -> bytes:
    """An MQTT 3.1.1 CONNECT packet (clean session, keep-alive 10 s)."""
    flags = 0x02
    payload = struct.pack("!H", len(client_id)) + client_id.encode()
    if username is not None:
        flags |= 0x80
        payload += struct.pack("!H", len(username.encode())) + username.encode()
        if password is not None:
            flags |= 0x40
            payload += struct.pack("!H", len(password.encode())) + password.encode()
    variable = b"\x00\x04MQTT\x04" + bytes([flags]) + struct.pack("!H", 10)
    body = variable + payload
    return b"\x10" + _remaining_length(len(body)) + body


CONNACK_CODES = {
    1: "unacceptable protocol version",
    2: "client identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorized",
}


class ProbeRefused(Exception):
    """The broker answered CONNECT with a refusal (bad credentials, ...): retrying will not help."""


def probe(endpoint: BrokerEndpoint, timeout: float = 2.0) -> None:
    """Connect, await CONNACK, disconnect. Raises OSError if the broker is not there yet,
    :class:`ProbeRefused` if it refused the connection."""
    sock = socket.create_connection((endpoint.host, endpoint.port), timeout=timeout)
    try:
        if endpoint.tls is not None:
            sock = ssl_context(endpoint.tls).wrap_socket(sock, server_hostname=endpoint.host)
        client_id = f"harness-probe-{os.getpid()}-{id(sock) & 0xFFFF:x}"
        sock.sendall(connect_packet(client_id, endpoint.username, endpoint.password))
        reply = b""
        while len(reply) < 4:
            chunk = sock.recv(4 - len(reply))
            if not chunk:
                raise ConnectionError("broker closed the connection before CONNACK")
            reply += chunk
        if reply[0] != 0x20:
            raise ConnectionError(f"expected CONNACK from the broker, got packet type 0x{reply[0]:02x}")
        if reply[3] != 0:
            raise ProbeRefused(f"broker refused the connection: {CONNACK_CODES.get(reply[3], f'code {reply[3]}')}")
        sock.sendall(b"\xe0\x00")  # DISCONNECT
    finally:
        sock.close()
