"""Every command that runs the cascade takes the same backend options and fails in one line."""
import json

import pytest
from click.testing import CliRunner

from mspd_edge.cli import main

from torch_free import run_without_torch

CASCADE_COMMANDS = ("protect", "revert", "camera", "evaluate", "bench", "parity", "verify")
BACKEND_OPTIONS = ("--backbone", "--classifier", "--device", "--model-dir", "--provider", "--threads")


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("command", CASCADE_COMMANDS)
def test_the_same_backend_options_everywhere(command):
    help_text = invoke(command, "--help").output
    for option in BACKEND_OPTIONS + (("--backends",) if command in ("bench", "parity") else ("--backend",)):
        assert option in help_text, (command, option)


@pytest.mark.parametrize("command", ["protect", "camera", "evaluate"])
def test_an_unknown_backend_is_one_line_and_exit_2(command, tmp_path, cifar10_dir):
    where = {"protect": [tmp_path, "-o", tmp_path / "out"],
             "camera": ["-s", tmp_path, "-o", tmp_path / "out"],
             "evaluate": ["--data", cifar10_dir / "test.npz", "-o", tmp_path / "out"]}[command]
    result = invoke(command, *where, "--backend", "foo")
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert lines == ["error: unknown backend 'foo': use one of ort, torch, trt, auto"]


def test_camera_runs_ort_without_torch(tiny_bundle, cifar10, tmp_path):
    """On a device without torch: a one-line error naming --model-dir, then frames with it."""
    import cv2

    frames = tmp_path / "frames"
    frames.mkdir()
    for i, image in enumerate(cifar10[0][:2]):
        cv2.imwrite(str(frames / f"f{i}.png"), image[:, :, ::-1])
    code = f"""
import json, sys
from click.testing import CliRunner
from mspd_edge.cli import main
base = ["camera", "-s", {str(frames)!r}, "--backend", "ort", "--n-samples", "2", "--seed", "1", "-q"]
without = CliRunner().invoke(main, base + ["-o", {str(tmp_path / 'a')!r}])
given = CliRunner().invoke(main, base + ["-o", {str(tmp_path / 'b')!r}, "--model-dir", {str(tiny_bundle)!r}])
print(json.dumps({{"without": [without.exit_code, without.output], "given": [given.exit_code, given.output],
                  "torch": "torch" in sys.modules}}))
"""
    done = run_without_torch(code, env={"MSPD_EDGE_CACHE": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    code, output = result["without"]
    assert code == 2 and len(output.strip().splitlines()) == 1 and "Traceback" not in output
    assert output.startswith("error: ") and "needs torch" in output and "--model-dir" in output
    assert result["given"][0] == 0, result["given"][1]
    assert sorted(p.name for p in (tmp_path / "b").glob("frame_*.png")) == ["frame_000000.png", "frame_000001.png"]
    assert result["torch"] is False
