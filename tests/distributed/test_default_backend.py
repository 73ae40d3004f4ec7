"""One default for both engines: ``mspd-edge protect`` with no backend options writes the same
bytes with and without ``--engine ray`` (the shipped default models, ``--backend auto``)."""
import json
import shutil
import subprocess
import sys

from limits import COMMAND_SECONDS
from ray_helpers import SAMPLES, SEED, pngs

from mspd_edge.backends import BackendOptions, resolve_backend

IMAGES = 12


def protect(source, out, *extra):
    command = [sys.executable, "-m", "mspd_edge.cli", "protect", str(source), "-o", str(out),
               "--seed", str(SEED), "--n-samples", str(SAMPLES), "-q", "--report", f"{out}.json", *extra]
    result = subprocess.run(command, capture_output=True, text=True, timeout=COMMAND_SECONDS)
    assert result.returncode == 0, result.stderr
    return json.loads(open(f"{out}.json").read())


def test_local_and_ray_defaults_write_the_same_bytes(ray_cluster, inputs, tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    for path in sorted(inputs.glob("img*"))[:IMAGES]:   # RGB, gray and RGBA PNGs, JPEGs
        shutil.copy(path, source)
    local = protect(source, tmp_path / "local")
    ray = protect(source, tmp_path / "ray", "--engine", "ray", "--address", ray_cluster)
    outputs = pngs(tmp_path / "local")
    assert len(outputs) == IMAGES and pngs(tmp_path / "ray") == outputs
    chosen = resolve_backend("auto", BackendOptions(precision="auto"))
    assert local["settings"]["backend"] == ray["settings"]["backend"] == chosen
