"""``protect_dataset`` on a real local Ray cluster (2 CPUs): the same bytes as local
``mspd-edge protect``, whatever the partitioning; bad files as error rows; checked reruns;
object storage on a real S3 server; an actor killed with SIGKILL mid-job."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.fs as pafs
import pytest
from PIL import Image
from ray_helpers import BAD, SAMPLES, SEED, hidden, local_protect, pngs, run_ray, s3_uri

from mspd_edge.distributed.manifest import COLUMNS, read_manifest
from mspd_edge.protect import FileOptions

PROTECTOR = "MapWorker(MapBatches(Protector))"   # the process title of a protector actor

@pytest.fixture(scope="module")
def local(inputs, tiny_bundle, tmp_path_factory):
    """The local engine's outputs and report records (by output name) for ``inputs``."""
    out = tmp_path_factory.mktemp("local")
    result = local_protect(inputs, out, tiny_bundle, "--report", out / "report.json")
    assert result.exit_code == 1, result.output   # the two bad files
    records = json.loads((out / "report.json").read_text())["images"]
    return pngs(out), {Path(r["output"]).relative_to(out).as_posix(): r for r in records}


@pytest.mark.parametrize("workers, batch_size", [(1, 3), (2, None), (4, 2)])
def test_same_bytes_as_local_protect_whatever_the_partitioning(ray_cluster, inputs, tiny_bundle, local,
                                                              tmp_path, workers, batch_size):
    outputs, records = local
    out = tmp_path / "out"
    result = run_ray(inputs, out, tiny_bundle, workers=workers, batch_size=batch_size)
    assert pngs(out) == outputs and len(outputs) == 25
    assert result.counts == {"written": 25, "skipped": 1, "failed": 2}
    rows = read_manifest((out / "manifest.jsonl").read_text())
    assert len(rows) == 28 and all(set(row) == set(COLUMNS) for row in rows)
    by_input = {Path(row["input"]).name: row for row in rows}
    for name, why in BAD.items():
        assert by_input[name]["status"] == "failed" and by_input[name]["error"].startswith(why)
        assert by_input[name]["output"] is None
    unsupported = by_input["readme.txt"]
    assert unsupported["status"] == "skipped"
    assert unsupported["error"].startswith("not a supported image file")
    for row in rows:
        if row["status"] == "written":
            expected = records[Path(row["output"]).relative_to(out).as_posix()]
            for key in ("label", "size", "channels", "resized", "linf_255", "metadata"):
                assert row[key] == expected[key], key
            for key in ("l2", "psnr", "ssim"):   # BLAS threads may change the last bits of a sum
                assert row[key] == pytest.approx(expected[key], rel=1e-9), key
            assert row["seconds"] > 0
    assert hidden(out) == []


def test_webp_without_metrics_matches_the_local_engine(ray_cluster, inputs, tiny_bundle, tmp_path):
    assert local_protect(inputs, tmp_path / "local", tiny_bundle, "--format", "webp").exit_code == 1
    result = run_ray(inputs, tmp_path / "out", tiny_bundle, files=FileOptions(format="webp", metrics=False))
    assert result.counts == {"written": 25, "skipped": 1, "failed": 2}
    written = pngs(tmp_path / "out", "*.webp")
    assert written == pngs(tmp_path / "local", "*.webp") and len(written) == 25
    rows = [row for row in read_manifest((tmp_path / "out" / "manifest.jsonl").read_text())
            if row["status"] == "written"]
    assert all(row["size"] and row["linf"] is None and row["ssim"] is None for row in rows)
    assert {tuple(row["size"]) for row in rows} == {(32, 32), (160, 120)}


def test_a_rerun_skips_complete_outputs_and_redoes_the_rest(ray_cluster, inputs, tiny_bundle, local,
                                                            tmp_path):
    outputs, _ = local
    out = tmp_path / "out"
    run_ray(inputs, out, tiny_bundle, workers=2)
    (out / "img04.png").unlink()                                          # never written
    damaged = (out / "img08.png").read_bytes()
    (out / "img08.png").write_bytes(damaged[: len(damaged) // 2])         # a partial file
    Image.new("RGB", (8, 8)).save(out / "img12.png")                      # not this input's protection
    foreign = (out / "img12.png").read_bytes()
    result = run_ray(inputs, out, tiny_bundle, workers=2)
    rows = {Path(row["input"]).name: row for row in read_manifest((out / "manifest.jsonl").read_text())}
    assert rows["img04.png"]["status"] == rows["img08.png"]["status"] == "written"
    assert rows["img12.png"]["status"] == "failed" and "--overwrite" in rows["img12.png"]["error"]
    assert (out / "img12.png").read_bytes() == foreign
    assert result.counts == {"written": 2, "skipped": 23, "failed": 3}
    skipped = [row for row in rows.values() if row["status"] == "skipped" and row["error"] is None]
    assert all(row["linf_255"] <= 8 and row["ssim"] is not None for row in skipped)
    assert {k: v for k, v in pngs(out).items() if k != "img12.png"} == {
        k: v for k, v in outputs.items() if k != "img12.png"}
    assert hidden(out) == []


def test_object_storage_in_and_out(ray_cluster, s3_server, inputs, tiny_bundle, local):
    outputs, _ = local
    s3 = pafs.S3FileSystem(endpoint_override=s3_server, scheme="http", region="us-east-1",
                           allow_bucket_creation=True)
    s3.create_dir("photos")
    pafs.copy_files(str(inputs), "photos/in", source_filesystem=pafs.LocalFileSystem(),
                    destination_filesystem=s3)
    result = run_ray(s3_uri(s3_server, "photos/in"), s3_uri(s3_server, "photos/out"), tiny_bundle, workers=2)
    assert result.counts == {"written": 25, "skipped": 1, "failed": 2}
    assert result.manifest == "s3://photos/out/manifest.jsonl"
    written = {}
    for info in s3.get_file_info(pafs.FileSelector("photos/out", recursive=True)):
        if info.type == pafs.FileType.File and info.path.endswith(".png"):
            with s3.open_input_stream(info.path) as stream:
                written[info.path.removeprefix("photos/out/")] = stream.read()
    assert written == outputs
    with s3.open_input_stream("photos/out/manifest.jsonl") as stream:
        rows = read_manifest(stream.read().decode())
    assert {row["output"] for row in rows if row["status"] == "written"} == {
        f"s3://photos/out/{name}" for name in outputs}


def protector_pids():
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            title = (proc / "cmdline").read_bytes() if proc.name.isdigit() else b""
            if title.startswith(f"ray::{PROTECTOR}".encode()):
                pids.append(int(proc.name))
        except OSError:
            continue
    return sorted(pids)


def test_an_actor_killed_mid_job_is_restarted_and_every_input_written_once(ray_cluster, inputs, tiny_bundle,
                                                                         tmp_path):
    samples = 50   # ~0.2 s per image: the job is still running when the first outputs land
    reference = tmp_path / "local"
    assert local_protect(inputs, reference, tiny_bundle, "--n-samples", samples).exit_code == 1
    out, done = tmp_path / "out", {}
    job = threading.Thread(target=lambda: done.update(result=run_ray(
        inputs, out, tiny_bundle, samples=samples, workers=2, batch_size=2)))
    job.start()
    deadline = time.monotonic() + 120
    while not list(out.glob("*.png")) and time.monotonic() < deadline:
        time.sleep(0.05)
    victims = protector_pids()
    assert victims, "no protector actor found"
    os.kill(victims[0], signal.SIGKILL)
    assert len(list(out.glob("*.png"))) < 25, "the job ended before the kill"
    job.join(timeout=300)
    assert not job.is_alive()
    assert set(protector_pids()) != set(victims) or not protector_pids()
    assert done["result"].counts == {"written": 25, "skipped": 1, "failed": 2}
    rows = read_manifest((out / "manifest.jsonl").read_text())
    assert sorted(row["input"] for row in rows) == sorted({row["input"] for row in rows})   # once each
    assert pngs(out) == pngs(reference)
    assert hidden(out) == []


def test_the_command_joins_a_cluster(ray_cluster, inputs, tiny_bundle, local, tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "mspd_edge.cli", "protect", str(inputs), "-r", "-o", str(out),
               "--engine", "ray", "--address", ray_cluster, "--model-dir", str(tiny_bundle),
               "--seed", str(SEED), "--n-samples", str(SAMPLES), "--workers", "1",
               "--report", str(tmp_path / "report.json")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2
    for name, why in BAD.items():
        assert any(line.startswith(f"error: {inputs / name}: {why}") for line in errors), errors
    assert "protected 25 image(s) (1 skipped, 2 failed) on 1 Ray worker(s); seed 5" in result.stderr
    assert pngs(out) == local[0]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["settings"]["seed"] == SEED and report["settings"]["engine"] == "ray"
    assert report["counts"] == {"written": 25, "skipped": 1, "failed": 2}
    assert report["manifest"] == str(out / "manifest.jsonl") and report["workers"]["count"] == 1
