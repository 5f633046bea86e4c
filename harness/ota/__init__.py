"""OTA on the harness side: signing keys, signed images in the twin's format, their manifests.

The artifact server that serves the images lives in :mod:`harness.services.artifacts`.
"""

from harness.ota.images import CORRUPTIONS, SignedImage, build_signed_image, check_version, corrupt, verify_image
from harness.ota.keys import KeyPair, generate_keypair, key_id, load_private_key, load_public_key
from harness.ota.manifest import Manifest, manifest_path, read_manifest, write_manifest

__all__ = [
    "CORRUPTIONS",
    "KeyPair",
    "Manifest",
    "SignedImage",
    "build_signed_image",
    "check_version",
    "corrupt",
    "generate_keypair",
    "key_id",
    "load_private_key",
    "load_public_key",
    "manifest_path",
    "read_manifest",
    "verify_image",
    "write_manifest",
]
