"""``harness ota keygen|build|verify``: the round trip, and one-line errors for bad input."""

from __future__ import annotations

import json
import re
import selectors
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main
from harness.ota import load_public_key, verify_image
from tests.ota.client import fetch


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["ota", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_keygen_build_verify_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys, img = tmp_path / "keys", tmp_path / "out" / "fw-2.0.0.img"
    status, out, _ = run(capsys, "keygen", "--out", str(keys))
    assert status == 0 and "key id " in out
    status, out, _ = run(
        capsys,
        "build",
        "--version",
        "2.0.0",
        "--security-counter",
        "7",
        "--variant",
        "slow-boot",
        "--variant-param",
        "1500",
        "--size",
        "4KiB",
        "--key",
        str(keys / "ota-private.pem"),
        "--out",
        str(img),
    )
    assert status == 0, out
    manifest = json.loads((tmp_path / "out" / "fw-2.0.0.img.json").read_text())
    assert manifest["security_counter"] == 7 and manifest["variant"] == "slow-boot"
    assert manifest["variant_param"] == 1500 and manifest["payload_size"] == 4096
    assert manifest["size"] == img.stat().st_size
    assert verify_image(img.read_bytes(), load_public_key(keys / "ota-public.bin")) == []
    status, out, _ = run(capsys, "verify", str(img), "--pubkey", str(keys / "ota-public.pem"))
    size = img.stat().st_size
    assert (status, out) == (
        0, f"{img}: ok (structure, payload hash, signature, manifest; {size} bytes fit the 2097152 bytes (2 MiB) slot)\n"
    )


def test_verify_prints_one_line_per_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys, img = tmp_path / "keys", tmp_path / "fw.img"
    run(capsys, "keygen", "--out", str(keys))
    run(
        capsys,
        "build",
        "--version",
        "1.2.3",
        "--size",
        "1KiB",
        "--security-counter",
        "2",
        "--key",
        str(keys / "ota-private.pem"),
        "--out",
        str(img),
    )
    data = bytearray(img.read_bytes())
    data[300] ^= 1
    img.write_bytes(bytes(data))
    status, out, _ = run(
        capsys, "verify", str(img), "--pubkey", str(keys / "ota-public.pem"), "--min-security-counter", "3"
    )
    lines = out.splitlines()
    assert status == 1
    assert all(line.startswith(f"{img}: ") for line in lines)
    assert any("payload hash mismatch" in line for line in lines)
    assert any("signature does not verify" in line for line in lines)
    assert any("manifest sha256" in line for line in lines)
    assert any("below the minimum 3 (downgrade)" in line for line in lines)


def test_keygen_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "keygen", "--out", str(tmp_path))
    status, _, err = run(capsys, "keygen", "--out", str(tmp_path))
    assert status == 2 and "pass --force" in err and err.count("\n") == 1
    status, _, _ = run(capsys, "keygen", "--out", str(tmp_path), "--force")
    assert status == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--key", "missing.pem"], "harness: missing.pem: private key file not found"),
        (["--version", "2.0 beta"], "harness: --version: expected 1-32 characters"),
        (["--size", "lots"], "harness: --size: expected a size such as '4KiB'"),
        (["--security-counter", "-3"], "harness: --security-counter: expected an integer 0..4294967295 (got '-3')"),
        (["--variant-param", "x"], "harness: --variant-param: expected an integer"),
        (["--variant", "exploding"], "harness: --variant: expected one of healthy, crash-on-boot"),
    ],
)
def test_build_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    run(capsys, "keygen", "--out", ".")
    defaults = {"--version": "2.0.0", "--key": "ota-private.pem", "--out": "fw.img", "--size": "1KiB"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        defaults[flag] = value
    status, out, err = run(capsys, "build", *[x for pair in defaults.items() for x in pair])
    assert status == 2 and out == ""
    assert err.startswith(message) and err.count("\n") == 1, err
    assert not (tmp_path / "fw.img").exists()


def test_verify_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "keygen", "--out", str(tmp_path))
    status, _, err = run(capsys, "verify", str(tmp_path / "nope.img"), "--pubkey", str(tmp_path / "ota-public.pem"))
    assert status == 2 and err == f"harness: {tmp_path / 'nope.img'}: image file not found\n"
    status, _, err = run(capsys, "verify", str(tmp_path / "nope.img"), "--pubkey", str(tmp_path / "nope.pem"))
    assert status == 2 and "public key file not found" in err and err.count("\n") == 1


def test_serve_answers_until_sigterm(tmp_path: Path) -> None:
    (tmp_path / "fw.img").write_bytes(b"image bytes")
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "ota", "serve", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = _read_line(proc, timeout=20)
        url = re.search(r"at (http://127\.0\.0\.1:\d+)", first)
        assert url, first
        assert fetch(url.group(1) + "/fw.img").body == b"image bytes"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert out.strip() == "stopped: 1 requests, 11 bytes served"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            raise AssertionError(f"no line from 'harness ota serve' within {timeout}s (exit status {proc.poll()})")
    return proc.stdout.readline()


def test_serve_refuses_a_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "serve", str(tmp_path / "nope"))
    assert status == 2 and err == f"harness: {tmp_path / 'nope'}: expected a folder of images\n"


def test_serve_refuses_a_folder_holding_an_image_the_slot_cannot_hold(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    (tmp_path / "small.img").write_bytes(b"x" * 4096)
    (tmp_path / "big.img").write_bytes(b"x" * 8193)
    (tmp_path / "notes.txt").write_bytes(b"x" * 9000)  # not an image: no .img suffix, no manifest
    status, out, err = run(capsys, "serve", str(tmp_path), "--slot-size", "8KiB")
    assert status == 2 and out == ""
    lines = err.splitlines()
    assert lines[0] == (f"harness: {tmp_path / 'big.img'}: image of 8193 bytes (8.001 KiB) does not fit the "
                        "8192 bytes (8 KiB) slot")  # fmt: skip
    assert len(lines) == 2 and "nothing served" in lines[1] and "--slot-size" in lines[1]
    status, _, err = run(capsys, "serve", str(tmp_path), "--slot-size", "lots")
    assert status == 2 and err.startswith("harness: --slot-size: ") and err.count("\n") == 1


def test_the_harness_cli_mounts_the_ota_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main as harness_main

    assert harness_main(["ota", "keygen", "--out", str(tmp_path)]) == 0
    assert (
        harness_main(
            [
                "ota",
                "build",
                "--version",
                "1.0",
                "--size",
                "0",
                "--key",
                str(tmp_path / "nope.pem"),
                "--out",
                str(tmp_path / "fw.img"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert (
        err
        == f"harness: {tmp_path / 'nope.pem'}: private key file not found (make one with 'harness ota keygen --out DIR')\n"
    )


def _keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    keys = tmp_path / "keys"
    assert run(capsys, "keygen", "--out", str(keys))[0] == 0
    return keys


def test_build_refuses_an_image_larger_than_the_slot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys = _keys(tmp_path, capsys)
    img = tmp_path / "big.img"
    args = ["build", "--version", "2.0.0", "--key", str(keys / "ota-private.pem"), "--out", str(img)]
    status, out, err = run(capsys, *args, "--size", "50MB")  # the default slot: the twin's 2 MiB
    assert status == 2 and out == "" and not img.exists()
    assert err == ("harness: image 2.0.0: image of 50000320 bytes (47.68 MiB) does not fit the "
                   "2097152 bytes (2 MiB) slot\n")  # fmt: skip
    status, _, err = run(capsys, *args, "--size", "64KiB", "--slot-size", "64KiB")  # header + trailer overflow it
    assert status == 2 and err.count("\n") == 1 and "65856 bytes" in err and "65536 bytes (64 KiB) slot" in err
    assert run(capsys, *args, "--size", "3MiB", "--slot-size", "4MiB")[0] == 0
    status, _, err = run(capsys, *args, "--size", "1MiB", "--slot-size", "lots")
    assert status == 2 and err.startswith("harness: --slot-size: expected a size")


def test_build_takes_the_slot_size_from_a_twin_rig(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    keys = _keys(tmp_path, capsys)
    rig = tmp_path / "small.yaml"
    rig.write_text("name: small\ntwin:\n  slot_pages: 64\nprofile: twin-reference\n")
    monkeypatch.chdir(tmp_path)
    args = ["build", "--version", "2.0.0", "--key", str(keys / "ota-private.pem"), "--out", str(tmp_path / "x.img")]
    status, _, err = run(capsys, *args, "--size", "300KiB", "--rig", str(rig))
    assert status == 2 and "does not fit the 262144 bytes (256 KiB) slot" in err
    assert run(capsys, *args, "--size", "200KiB", "--rig", str(rig))[0] == 0


def test_verify_refuses_an_image_larger_than_the_slot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys = _keys(tmp_path, capsys)
    img = tmp_path / "fw.img"
    build = ["build", "--version", "2.0.0", "--key", str(keys / "ota-private.pem"), "--out", str(img)]
    assert run(capsys, *build, "--size", "50MB", "--slot-size", "64MB")[0] == 0  # a board with a big slot
    status, out, _ = run(capsys, "verify", str(img), "--pubkey", str(keys / "ota-public.pem"))  # the twin's slot
    assert status == 1
    assert out == f"{img}: image of 50000320 bytes (47.68 MiB) does not fit the 2097152 bytes (2 MiB) slot\n"
    status, out, _ = run(capsys, "verify", str(img), "--pubkey", str(keys / "ota-public.pem"), "--slot-size", "64MB")
    assert status == 0 and out.startswith(f"{img}: ok (")
