"""The ``harness ota`` subcommands, for the CLI to mount with :func:`add_ota_commands`.

    harness ota keygen --out keys/                                   # Ed25519 key pair (refuses to overwrite)
    harness ota build --version 2.0.0 --key keys/ota-private.pem --out fw-2.0.0.img
                      [--security-counter N] [--variant healthy|crash-on-boot|fail-health|leak|slow-boot]
                      [--variant-param N] [--size 1MiB]              # signed image + fw-2.0.0.img.json
                      [--slot-size 2MiB | --rig RIG]                 # refuse an image the slot cannot hold
    harness ota verify fw-2.0.0.img --pubkey keys/ota-public.pem     # one line per problem; exit 1 if any
                      [--slot-size 2MiB | --rig RIG]
    harness ota serve artifacts/ [--host 0.0.0.0] [--port 8080]      # the artifact server, until Ctrl-C
                      [--slot-size 2MiB | --rig RIG]                 # refuse to serve images the slot cannot hold

Bad input raises ConfigError, which the CLI prints as one line; :func:`main` does the same when this
module runs on its own (``python -m harness.ota.commands ota ...``).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, UnitError
from harness.units import parse_size

_VARIANTS = "healthy|crash-on-boot|fail-health|leak|slow-boot"


def add_ota_commands(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``ota`` with its subcommands to an argparse ``add_subparsers()`` object; returns its parser."""
    ota: argparse.ArgumentParser = subparsers.add_parser("ota", help="OTA images: keys, signed builds, verify, serve")
    sub = ota.add_subparsers(dest="ota_command", metavar="SUBCOMMAND")
    ota.set_defaults(func=lambda ns: _usage(ota))

    keygen = sub.add_parser("keygen", help="make an Ed25519 signing key pair in a folder")
    keygen.add_argument("--out", required=True, help="folder for ota-private.pem, ota-public.pem, ota-public.bin")
    keygen.add_argument("--force", action="store_true", help="replace an existing key pair")
    keygen.set_defaults(func=cmd_keygen)

    build = sub.add_parser("build", help="build a signed image in the twin's format, with a JSON manifest beside it")
    build.add_argument("--version", required=True, help="firmware version string, e.g. 2.0.0")
    build.add_argument("--security-counter", default="0", help="anti-rollback counter (default 0)")
    build.add_argument("--variant", default="healthy", help=f"behaviour the twin models: {_VARIANTS}")
    build.add_argument("--variant-param", default="0", help="variant parameter (leak: bytes/h; slow-boot: ms)")
    build.add_argument("--size", default="1MiB", help="payload size, e.g. 1MiB or 64KiB (default 1MiB)")
    build.add_argument("--key", required=True, help="PEM private key (from 'harness ota keygen')")
    build.add_argument("--out", required=True, help="image file to write; the manifest goes to OUT.json")
    _slot_options(build)
    build.set_defaults(func=cmd_build)

    verify = sub.add_parser("verify", help="check an image's structure, hashes and signature")
    verify.add_argument("file", help="image file")
    verify.add_argument("--pubkey", required=True, help="public key: PEM, 32 raw bytes or 64 hex digits")
    verify.add_argument("--manifest", help="manifest to check against (default: FILE.json when it exists)")
    verify.add_argument("--min-security-counter", help="reject images below this counter (downgrade)")
    _slot_options(verify)
    verify.set_defaults(func=cmd_verify)

    serve = sub.add_parser("serve", help="serve a folder of images over HTTP (Range, ETag) until Ctrl-C")
    serve.add_argument("folder", help="folder of images")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", default="0", help="port (default: any free port)")
    _slot_options(serve)
    serve.set_defaults(func=cmd_serve)
    return ota


def _slot_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--slot-size", help="the device's slot size, e.g. 2MiB (default: the twin's, 2MiB)")
    group.add_argument("--rig", help="take the slot size from this rig's twin (name or rig file)")


def _slot_size(ns: argparse.Namespace) -> int:
    """The slot an image must fit: --slot-size, else the twin slot of --rig, else the twin's default."""
    from harness.ota.slot import TWIN_SLOT_SIZE, rig_slot_size

    if ns.slot_size is not None:
        try:
            size = parse_size(ns.slot_size)
        except UnitError as exc:
            raise ConfigError(f"--slot-size: {exc}") from None
        if size <= 0:
            raise ConfigError(f"--slot-size: expected a size above 0, e.g. 2MiB (got {ns.slot_size!r})")
        return size
    if ns.rig is not None:
        from harness.rig.loader import resolve_rig

        spec, source = resolve_rig(ns.rig, Path.cwd())
        size = rig_slot_size(spec)
        if size is None:
            raise ConfigError(f"--rig {ns.rig}: rig {spec.name!r} ({source}) is a bench and says no slot size; "
                              "pass the board's --slot-size instead")  # fmt: skip
        return size
    return TWIN_SLOT_SIZE


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _int_option(name: str, value: str, maximum: int = 2**32 - 1) -> int:
    try:
        number = int(value, 0)
    except ValueError:
        number = -1
    if not 0 <= number <= maximum:
        raise ConfigError(f"{name}: expected an integer 0..{maximum} (got {value!r})")
    return number


def cmd_keygen(ns: argparse.Namespace) -> int:
    from harness.ota.keys import generate_keypair

    pair = generate_keypair(Path(ns.out), force=ns.force)
    print(f"key id {pair.key_id}")
    print(f"private key: {pair.private_path}  (signs images; keep it secret)")
    print(f"public key:  {pair.public_pem_path}  (raw 32 bytes: {pair.public_raw_path})")
    return 0


def cmd_build(ns: argparse.Namespace) -> int:
    from harness.ota.images import build_signed_image, check_version
    from harness.ota.keys import load_private_key
    from harness.ota.manifest import write_manifest
    from harness.twin.image import Variant

    check_version(ns.version, field="--version")
    try:
        variant = Variant.from_label(ns.variant)
    except ValueError as exc:
        raise ConfigError(f"--{exc}") from None
    counter = _int_option("--security-counter", ns.security_counter)
    param = _int_option("--variant-param", ns.variant_param)
    try:
        size = parse_size(ns.size)
    except UnitError as exc:
        raise ConfigError(f"--size: {exc}") from None
    slot_size = _slot_size(ns)
    key = load_private_key(ns.key)
    image = build_signed_image(
        ns.version, key, security_counter=counter, variant=variant, variant_param=param, size=size,
        slot_size=slot_size,
    )
    out = Path(ns.out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(image.data)
        manifest_file = write_manifest(image.manifest, out)
    except OSError as exc:
        raise ConfigError(f"--out: cannot write {out} ({exc.strerror})") from None
    m = image.manifest
    print(
        f"{out}: {m.size} bytes, version {m.version}, security counter {m.security_counter}, variant {m.variant}"
        f"({m.variant_param}), sha256 {m.sha256[:16]}..., signed by key {m.key_id}"
    )
    print(f"manifest: {manifest_file}")
    return 0


def cmd_verify(ns: argparse.Namespace) -> int:
    from harness.ota.images import verify_image
    from harness.ota.keys import load_public_key
    from harness.ota.manifest import Manifest, manifest_path, read_manifest

    public = load_public_key(ns.pubkey)
    path = Path(ns.file)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: image file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the image ({exc.strerror})") from None
    manifest: Manifest | None
    if ns.manifest:
        manifest = read_manifest(ns.manifest)
    else:
        beside = manifest_path(path)
        manifest = read_manifest(beside) if beside.is_file() else None
    minimum = None
    if ns.min_security_counter is not None:
        minimum = _int_option("--min-security-counter", ns.min_security_counter)
    slot_size = _slot_size(ns)
    problems = verify_image(data, public, manifest=manifest, min_security_counter=minimum, slot_size=slot_size)
    for problem in problems:
        print(f"{path}: {problem}")
    if problems:
        return 1
    from harness.ota.slot import show_bytes

    checked = "structure, payload hash, signature" + (", manifest" if manifest is not None else "")
    checked += f"; {len(data)} bytes fit the {show_bytes(slot_size)} slot"
    print(f"{path}: ok ({checked})")
    return 0


def oversized_images(folder: Path, slot_size: int) -> list[str]:
    """``FILE: image of N bytes does not fit the M bytes slot`` for each image in ``folder`` (``*.img``,
    or any file with a ``.json`` manifest beside it) that a ``slot_size``-byte slot cannot hold."""
    from harness.ota.slot import fit_problem

    out = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix != ".img" and not path.with_name(path.name + ".json").is_file():
            continue
        problem = fit_problem(path.stat().st_size, slot_size)
        if problem is not None:
            out.append(f"{path}: {problem}")
    return out


def cmd_serve(ns: argparse.Namespace) -> int:
    from harness.services.artifacts import ArtifactServer

    folder = Path(ns.folder)
    if not folder.is_dir():
        raise ConfigError(f"{folder}: expected a folder of images")
    port = _int_option("--port", ns.port, 65535)
    slot_size = _slot_size(ns)
    too_big = oversized_images(folder, slot_size)
    if too_big:
        for line in too_big:
            print(f"harness: {line}", file=sys.stderr)
        print(f"harness: nothing served: {len(too_big)} image(s) cannot be installed; remove them or pass "
              "the device's --slot-size", file=sys.stderr)  # fmt: skip
        return 2
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with ArtifactServer(folder, host=ns.host, port=port) as server:
            print(f"serving {folder} at {server.base_url}  (Ctrl-C to stop)", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                while not stop.wait(3600):  # until SIGTERM or Ctrl-C
                    pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    stats = server.statistics()  # after stop: every request answered is counted
    print(f"stopped: {stats['requests']} requests, {stats['bytes_served']} bytes served")
    return 0
