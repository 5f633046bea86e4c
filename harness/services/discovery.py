"""How a tool outside the run finds the run's broker: ``<run folder>/services.json``.

Written when the rig's services start (one file per process: ``services-gw0.json`` under xdist), and
marked stopped when they stop. An independent subscriber (``mosquitto_sub``, a paho script, a
dashboard) reads it to subscribe to exactly what the collector subscribes to::

    {"state": "running", "worker": "main", "pid": 4242,
     "broker": {"url": "mqtt://127.0.0.1:40121", "host": "127.0.0.1", "port": 40121, "kind": "mosquitto",
                "tls": null, "username": null, "password": "none"},
     "device": {"host": "127.0.0.1", "port": 40713},
     "topics": {"telemetry": "devices/+/telemetry", "status": "devices/+/status"},
     "collector": {"client_id": "harness-collector-1a2b3c4d"},
     "artifacts_url": "http://127.0.0.1:39221"}

``broker`` is the broker itself (subscribe there; the collector does), ``device`` the address the
device is told to use (the impairment point, when the rig has one). A password is never written:
``password`` says ``"none"`` (the harness's own broker: anonymous, loopback only) or ``"rig file"``
(an external broker: ``services.password`` of the rig file, or the URL's).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

SERVICES_FILE = "services.json"


def services_file_name(worker: str) -> str:
    return f"services-{worker}.json" if worker and worker != "main" else SERVICES_FILE


def describe(services: Any, worker: str) -> dict[str, Any]:
    """The JSON-ready description of a started :class:`~harness.rig.services.RigServices`."""
    endpoint = services.broker.endpoint
    tls = endpoint.tls
    return {
        "state": "running",
        "started": time.time(),
        "worker": worker,
        "pid": os.getpid(),
        "broker": {
            "url": endpoint.url,
            "host": endpoint.host,
            "port": endpoint.port,
            "kind": getattr(services.broker, "kind", "external"),
            "tls": None if tls is None else dataclasses.asdict(tls),
            "username": endpoint.username,
            "password": "rig file" if endpoint.password else "none",
        },
        "device": {"host": services.device_host, "port": services.device_port},
        "topics": {"telemetry": "devices/+/telemetry", "status": "devices/+/status"},
        "collector": {"client_id": services.collector.client_id} if services.collector is not None else None,
        "artifacts_url": services.artifacts_url or None,
    }


def write(folder: Path, worker: str, info: dict[str, Any]) -> Path:
    """Write ``info`` atomically (a reader never sees half a file); returns the path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / services_file_name(worker)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(info, indent=1) + "\n")
    tmp.replace(path)
    return path


def mark_stopped(path: Path) -> None:
    """The services are gone: say so, so a tool reading the file later does not dial a dead port."""
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    info.update(state="stopped", stopped=time.time())
    write(path.parent, str(info.get("worker", "main")), info)


def read(folder: Path, worker: str = "main") -> dict[str, Any]:
    """The services file of a run folder (``ValueError`` with the path if it is missing or not JSON)."""
    path = folder / services_file_name(worker)
    try:
        return dict(json.loads(path.read_text()))
    except FileNotFoundError:
        raise ValueError(f"{path}: no services file (the run has not started its services yet)") from None
    except ValueError as exc:
        raise ValueError(f"{path}: expected JSON, got {exc}") from None
