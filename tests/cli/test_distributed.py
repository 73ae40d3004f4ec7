"""``mspd-edge protect --engine`` (cli/distributed.py): what is refused before any Ray cluster starts."""
import pytest
from click.testing import CliRunner

from mspd_edge.cli import main


def invoke(*args):
    return CliRunner().invoke(main, ["protect", *map(str, args)])


@pytest.mark.parametrize("args, message", [
    (("--address", "127.0.0.1:6379"), "error: --address goes with --engine ray"),
    (("--workers", "2"), "error: --workers goes with --engine ray"),
    (("--manifest", "m.jsonl"), "error: --manifest goes with --engine ray"),
    (("--engine", "ray", "--device", "cuda"),
     "error: --device cuda with --engine ray needs --gpus-per-worker"),
])
def test_engine_options_are_checked(tmp_path, args, message):
    result = invoke(tmp_path, "-o", tmp_path / "out", *args)
    assert result.exit_code == 2 and result.stderr.startswith(message), result.stderr


@pytest.mark.parametrize("where", ["input", "output"])
def test_object_storage_needs_the_ray_engine(tmp_path, where):
    uri = "s3://bucket/photos"
    args = (uri, "-o", tmp_path) if where == "input" else (tmp_path, "-o", uri)
    result = invoke(*args)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {uri}: object storage needs --engine ray"


def test_a_file_is_still_refused_as_the_output_folder(tmp_path):
    (tmp_path / "file").write_text("")
    result = invoke(tmp_path, "-o", tmp_path / "file")
    assert result.exit_code == 2 and "is a file" in result.stderr
