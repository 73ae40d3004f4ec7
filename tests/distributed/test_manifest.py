"""The manifest: every column in every row, counts by status, one complete file or none."""
import pytest

from mspd_edge.distributed.manifest import COLUMNS, ManifestWriter, encode_row, manifest_row, read_manifest
from mspd_edge.distributed.storage import resolve


def test_every_row_has_every_column():
    row = manifest_row("a.png", "written", output="out/a.png", seconds=0.5,
                       record={"linf_255": 8, "ssim": 0.9})
    assert tuple(row) == COLUMNS and row["linf_255"] == 8 and row["error"] is None
    assert tuple(manifest_row("b.png", "failed", error="truncated image")) == COLUMNS
    with pytest.raises(ValueError):
        manifest_row("c.png", "done")


def test_the_writer_counts_and_commits_one_file(tmp_path):
    location = resolve(tmp_path / "m" / "manifest.jsonl")
    writer = ManifestWriter(location)
    rows = [manifest_row("a.png", "written"), manifest_row("b.png", "failed", error="x"),
            manifest_row("c.png", "skipped")]
    for row in rows:
        writer.add(encode_row(row))
    assert not (tmp_path / "m").exists()   # nothing before the job ends
    writer.commit()
    assert read_manifest((tmp_path / "m" / "manifest.jsonl").read_text()) == rows
    assert writer.counts == {"written": 1, "skipped": 1, "failed": 1, "pending": 0}
    assert [p.name for p in (tmp_path / "m").iterdir()] == ["manifest.jsonl"]
