"""Keep alive, as a server enforces it (MQTT 3.1.1 §3.1.2.10), without I/O or a clock of its own.

"If the Keep Alive value is non-zero and the Server does not receive a Control Packet from the
Client within one and a half times the Keep Alive time period, it MUST disconnect the Network
Connection to the Client as if the network had failed" — and a connection that fails publishes the
client's Will Message (§3.1.2.5). mosquitto does this itself; the embedded broker's transport asks
this tracker which clients have gone silent (``harness/services/embedded_broker.py``).

Times are whatever monotonic seconds the caller passes in.
"""

from __future__ import annotations

from dataclasses import dataclass

GRACE = 1.5  # §3.1.2.10: one and a half times the Keep Alive


@dataclass
class _Client:
    limit: float  # seconds of silence after which the connection is failed
    last: float  # when the last control packet arrived


class KeepaliveTracker:
    """Which connected clients sent no control packet within 1.5 times their keep alive."""

    def __init__(self, grace: float = GRACE) -> None:
        self._grace = grace
        self._clients: dict[str, _Client] = {}

    def connected(self, client_id: str, keep_alive: float, now: float) -> None:
        """A client connected (or took over its session) with this keep alive; 0 turns the check off."""
        if keep_alive > 0:
            self._clients[client_id] = _Client(limit=self._grace * keep_alive, last=now)
        else:
            self._clients.pop(client_id, None)

    def received(self, client_id: str, now: float) -> None:
        """Any control packet from the client (PINGREQ, PUBLISH, PUBACK, ...) resets its clock."""
        client = self._clients.get(client_id)
        if client is not None:
            client.last = max(client.last, now)

    def forget(self, client_id: str) -> None:
        self._clients.pop(client_id, None)

    def expired(self, now: float) -> list[tuple[str, float]]:
        """Clients silent for their limit or longer, with how long; they are forgotten."""
        out = [(cid, now - c.last) for cid, c in self._clients.items() if now - c.last >= c.limit]
        for cid, _ in out:
            del self._clients[cid]
        return out

    def limit(self, client_id: str) -> float | None:
        client = self._clients.get(client_id)
        return client.limit if client is not None else None

    def next_deadline(self) -> float | None:
        """The earliest instant at which some client expires, if any client is watched."""
        return min((c.last + c.limit for c in self._clients.values()), default=None)

    def __len__(self) -> int:
        return len(self._clients)
