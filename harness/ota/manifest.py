"""The JSON manifest written beside each signed image (``fw.img`` -> ``fw.img.json``).

It says what the image is without parsing it (version, security counter, variant), how to check the
download (size and SHA-256 of the whole file, SHA-256 of the payload) and who signed it (key id,
signature hex). :func:`manifest_for` derives it from image bytes, so it can never disagree with the
image it was made from.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.twin.image import ImageInfo

FORMAT = "harness-ota-manifest/1"
SUFFIX = ".json"


@dataclass(frozen=True)
class Manifest:
    """What a signed image is; ``size``/``sha256`` cover the whole file, ``payload_*`` the payload."""

    version: str
    security_counter: int
    size: int
    sha256: str
    payload_size: int
    payload_sha256: str
    signature: str
    variant: str
    variant_param: int
    key_id: str
    format: str = FORMAT

    def slot_problem(self, slot_size: int | None) -> str | None:
        """Why the image this manifest describes cannot go into a ``slot_size``-byte slot; None if it fits."""
        from harness.ota.slot import fit_problem

        return fit_problem(self.size, slot_size)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: Any, where: str = "manifest") -> Manifest:
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a JSON object (got {type(data).__name__})")
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in data:
                if f.name == "format":
                    continue
                known = ", ".join(x.name for x in fields(cls))
                raise ConfigError(f"{where}: {f.name}: missing (a manifest has {known})")
            value = data[f.name]
            want = int if f.type == "int" else str
            if not isinstance(value, want) or isinstance(value, bool):
                raise ConfigError(f"{where}: {f.name}: expected {want.__name__} (got {value!r})")
            values[f.name] = value
        if values.get("format", FORMAT) != FORMAT:
            raise ConfigError(f"{where}: format: expected {FORMAT!r} (got {values['format']!r})")
        return cls(**values)


def manifest_for(data: bytes, info: ImageInfo, key_id: str) -> Manifest:
    """The manifest of ``data``, an image ``info`` describes, signed by the key ``key_id``."""
    return Manifest(
        version=info.version,
        security_counter=info.security_counter,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        payload_size=info.payload_size,
        payload_sha256=info.payload_sha256.hex(),
        signature=(info.signature or b"").hex(),
        variant=info.variant.label,
        variant_param=info.variant_param,
        key_id=key_id,
    )


def manifest_path(image_path: str | os.PathLike[str]) -> Path:
    """Where the manifest of an image file lives: the image's name plus ``.json``."""
    path = Path(image_path)
    return path.with_name(path.name + SUFFIX)


def write_manifest(manifest: Manifest, image_path: str | os.PathLike[str]) -> Path:
    target = manifest_path(image_path)
    target.write_text(manifest.to_json(), encoding="utf-8")
    return target


def read_manifest(path: str | os.PathLike[str]) -> Manifest:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: manifest not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the manifest ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}:{exc.colno}: expected JSON ({exc.msg})") from None
    return Manifest.from_dict(data, str(path))
