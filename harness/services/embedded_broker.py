"""The embedded MQTT broker, run as its own process: ``python -m harness.services.embedded_broker``.

Used when Debian's ``mosquitto`` is not on the machine, so a bare ``pip install`` still gives a
real broker. It wraps `amqtt <https://pypi.org/project/amqtt/>`_ (pure Python, asyncio) and runs
in a child process so the harness can kill and restart it exactly as it does mosquitto. Logs go
to stderr, which the parent sends to the run folder. SIGTERM shuts the broker down cleanly.

amqtt reads a client's keep alive but never acts on it, so a client whose network went away (a
partition holds its TCP connection open and silent) would stay "connected" for ever and its last
will would never go out. ``embedded_keepalive.KeepaliveEnforcer``, an amqtt plugin, fails the connection of a
client that sent no control packet within 1.5 times its keep alive (MQTT 3.1.1 §3.1.2.10), exactly as
if the network had failed, so amqtt publishes the client's will, as mosquitto does.

amqtt also drops the messages a client published (and it acknowledged) just before a DISCONNECT
when its broker loop had not delivered them yet; ``embedded_delivery.DeliveringBroker`` delivers
them first, as mosquitto does.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import Any

KEEPALIVE_PLUGIN = "harness.services.embedded_keepalive.KeepaliveEnforcer"
_log = logging.getLogger("harness.embedded_broker")


def broker_config(host: str, port: int) -> dict[str, Any]:
    """amqtt configuration: one plain TCP listener, anonymous clients, no $SYS topics."""
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}", "max_connections": 0}},
        "plugins": {
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
            KEEPALIVE_PLUGIN: {},
        },
    }


async def _serve(host: str, port: int) -> int:
    from harness.services.embedded_delivery import DeliveringBroker  # broker process only (amqtt)
    from harness.services.embedded_keepalive import KeepaliveEnforcer  # the class amqtt loads by its path

    broker = DeliveringBroker(broker_config(host, port))
    for plugin in broker.plugins_manager.plugins:
        if isinstance(plugin, KeepaliveEnforcer):
            plugin.bind(broker)
    await broker.start()
    _log.info("embedded broker listening on %s:%d", host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    _log.info("embedded broker shutting down")
    await broker.shutdown()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="harness.services.embedded_broker", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--debug", action="store_true", help="log every packet")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("transitions").setLevel(logging.WARNING)
    try:
        return asyncio.run(_serve(args.host, args.port))
    except Exception as exc:  # amqtt wraps bind errors in its own BrokerError: report one line
        cause = exc.__cause__ or exc
        print(f"embedded broker could not start on {args.host}:{args.port}: {cause}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
