"""``protect_dataset`` on a real local Ray cluster (2 CPUs): the same bytes as local
``mspd-edge protect``, whatever the partitioning and the route (batched through the object
store, or whole in an actor); bad files as error rows; checked reruns; object storage on a
real S3 server; the command."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.fs as pafs
import pytest
from PIL import Image
from limits import COMMAND_SECONDS
from ray_helpers import BAD, COUNTS, PHOTO_SIDE, SAMPLES, SEED, hidden, local_protect, pngs, run_ray, s3_uri

from mspd_edge.distributed.manifest import COLUMNS, read_manifest
from mspd_edge.distributed.ray_job import PHOTO_FILE_BYTES
from mspd_edge.distributed.stages import LARGE_PIXELS
from mspd_edge.job import FileOptions


@pytest.fixture(scope="module")
def local(inputs, tiny_bundle, tmp_path_factory):
    """The local engine's outputs and report records (by output name) for ``inputs``."""
    out = tmp_path_factory.mktemp("local")
    result = local_protect(inputs, out, tiny_bundle, "--report", out / "report.json")
    assert result.exit_code == 1, result.output   # the bad files
    records = json.loads((out / "report.json").read_text())["images"]
    return pngs(out), {Path(r["output"]).relative_to(out).as_posix(): r for r in records}


def test_the_defaults_part_thumbnails_from_photos(inputs):
    sizes = {p.name: p.stat().st_size for p in inputs.rglob("*.*")}
    assert max(size for name, size in sizes.items() if name.startswith("img")) < PHOTO_FILE_BYTES
    assert min(sizes["large0.jpg"], sizes["large1.jpg"], sizes["truncated-photo.jpg"]) >= PHOTO_FILE_BYTES
    assert PHOTO_SIDE ** 2 >= LARGE_PIXELS > 160 * 120   # the photos, not the crop


@pytest.mark.parametrize("workers, batch_size, route", [(1, 3, {"large_pixels": None}), (2, None, {}),
                                                      (4, 2, {"large_pixels": 0, "photo_file_bytes": 0})])
def test_same_bytes_as_local_protect_whatever_the_partitioning(ray_cluster, inputs, tiny_bundle, local,
                                                              tmp_path, workers, batch_size, route):
    """Every file batched, the photos whole (the defaults) or every file whole."""
    outputs, records = local
    out = tmp_path / "out"
    result = run_ray(inputs, out, tiny_bundle, workers=workers, batch_size=batch_size, **route)
    assert pngs(out) == outputs and len(outputs) == COUNTS["written"]
    assert result.counts == COUNTS and not result.interrupted
    rows = read_manifest((out / "manifest.jsonl").read_text())
    assert len(rows) == sum(COUNTS.values()) and all(set(row) == set(COLUMNS) for row in rows)
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
    assert result.counts == COUNTS
    written = pngs(tmp_path / "out", "*.webp")
    assert written == pngs(tmp_path / "local", "*.webp") and len(written) == COUNTS["written"]
    rows = [row for row in read_manifest((tmp_path / "out" / "manifest.jsonl").read_text())
            if row["status"] == "written"]
    assert all(row["size"] and row["linf"] is None and row["ssim"] is None for row in rows)
    assert {tuple(row["size"]) for row in rows} == {(32, 32), (160, 120), (PHOTO_SIDE, PHOTO_SIDE)}


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
    damaged = (out / "photos" / "large1.png").read_bytes()
    (out / "photos" / "large1.png").write_bytes(damaged[: len(damaged) // 2])   # redone by its actor
    result = run_ray(inputs, out, tiny_bundle, workers=2)
    rows = {Path(row["input"]).name: row for row in read_manifest((out / "manifest.jsonl").read_text())}
    assert {rows[name]["status"] for name in ("img04.png", "img08.png", "large1.jpg")} == {"written"}
    assert rows["img12.png"]["status"] == "failed" and "--overwrite" in rows["img12.png"]["error"]
    assert (out / "img12.png").read_bytes() == foreign
    assert result.counts == {"written": 3, "skipped": 24, "failed": 4, "pending": 0}
    assert rows["large0.jpg"]["status"] == "skipped"   # checked in its actor
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
    assert result.counts == COUNTS
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


def test_the_command_joins_a_cluster(ray_cluster, inputs, tiny_bundle, local, tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "mspd_edge.cli", "protect", str(inputs), "-r", "-o", str(out),
               "--engine", "ray", "--address", ray_cluster, "--model-dir", str(tiny_bundle),
               "--seed", str(SEED), "--n-samples", str(SAMPLES), "--workers", "1",
               "--report", str(tmp_path / "report.json")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=COMMAND_SECONDS)
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == len(BAD)
    for name, why in BAD.items():
        assert any(line.startswith(f"error: {inputs / name}: {why}") for line in errors), errors
    summary = re.search(r"protected 27 image\(s\) \(1 skipped, 3 failed\) in [\d.]+ s, [\d.]+ images/s on 1 "
                        r"Ray worker\(s\); seed 5; manifest ", result.stderr)
    assert summary, result.stderr
    # local protect's notes, before the work; no error-level line of Ray's own (core_worker.cc)
    notes = [line for line in result.stderr.splitlines() if line.startswith("note: ")]
    assert [note.split(" ")[2:4] for note in notes] == [["image(s)", "not"], ["photo(s)", "go"]], notes
    assert result.stderr.index(notes[-1]) < result.stderr.index("protecting:") < summary.start()
    assert " E " not in result.stderr and "core_worker" not in result.stderr, result.stderr
    assert pngs(out) == local[0]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["settings"]["seed"] == SEED and report["settings"]["engine"] == "ray"
    assert report["counts"] == COUNTS and report["interrupted"] is False
    assert report["manifest"] == str(out / "manifest.jsonl") and report["workers"]["count"] == 1


def test_workers_run_at_the_callers_priority(ray_cluster):
    """Ray would start them at nice 15: starved beside other work (prepare_local_cluster)."""
    import ray

    @ray.remote(num_cpus=0)
    def niceness():
        return os.nice(0)

    assert ray.get(niceness.remote()) == os.nice(0)
