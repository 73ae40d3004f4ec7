"""File digests (stdlib only: used by the export, the runtime and the model manifests)."""
import hashlib

_BLOCK = 1 << 20


def sha256_file(path):
    """The hex sha256 of the file at ``path``, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()
