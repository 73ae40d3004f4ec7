"""Opening sources: kinds, frames and timestamps of a file and a folder, clear errors."""
import cv2
import numpy as np
import pytest
from PIL import Image

from mspd_edge.camera.sources import (CaptureSource, SourceError, jetson_csi_pipeline, open_source,
                                      source_kind)

from camera_helpers import smooth_frames, write_video


@pytest.mark.parametrize("spec, kind", [
    ("0", "device"), ("12", "device"), ("csi", "csi"), ("csi:1", "csi"),
    ("rtsp://cam.local:554/stream", "url"), ("http://10.0.0.2/video.mjpg", "url"),
    ("videotestsrc ! videoconvert ! appsink", "gstreamer")])
def test_kinds(spec, kind):
    assert source_kind(spec) == kind


def test_file_and_folder_kinds(tmp_path, video):
    assert source_kind(str(video[0])) == "file"
    assert source_kind(str(tmp_path)) == "folder"


def test_video_file_frames_in_order_with_timestamps(video):
    path, decoded = video
    with open_source(str(path)) as source:
        assert (source.kind, source.live, source.fps, source.size) == ("file", False, 10.0, (80, 60))
        frames = list(source)
    assert [f.index for f in frames] == list(range(12))
    assert all(np.array_equal(f.image, d) for f, d in zip(frames, decoded))   # RGB, as decoded
    assert [round(f.timestamp, 3) for f in frames] == [round(k / 10, 3) for k in range(12)]


def test_folder_in_name_order_any_size_and_channels(tmp_path):
    images = {"b.png": np.full((20, 30, 3), 200, np.uint8), "a.png": np.full((10, 12), 50, np.uint8),
              "c.png": np.full((8, 8, 4), 90, np.uint8)}
    for name, pixels in images.items():
        Image.fromarray(pixels).save(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image")
    frames = list(open_source(str(tmp_path)))
    assert [f.index for f in frames] == [0, 1, 2]
    assert [f.image.shape for f in frames] == [(10, 12), (20, 30, 3), (8, 8, 4)]
    assert all(f.timestamp is None for f in frames)


def test_folder_skips_and_records_unreadable_images(tmp_path):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(b"not a png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "c.png")
    source = open_source(str(tmp_path))
    assert [f.index for f in source] == [0, 2]
    assert len(source.errors) == 1 and source.errors[0]["input"].endswith("b.png")


def test_empty_folder(tmp_path):
    with pytest.raises(SourceError, match="no image file"):
        open_source(str(tmp_path))


@pytest.mark.parametrize("spec, message", [
    ("/no/such/video.avi", "no such file or folder"),
    ("97", "cannot open camera 97"),
    ("rtsp://127.0.0.1:9/none", "cannot open stream"),
    ("videotestsrc ! appsink", "GStreamer")])
def test_unopenable_sources(spec, message):
    if "!" in spec and cv2.videoio_registry.hasBackend(cv2.CAP_GSTREAMER):
        pytest.skip("this OpenCV has GStreamer")
    with pytest.raises(SourceError, match=message):
        open_source(spec)


def test_not_a_video(tmp_path):
    path = tmp_path / "clip.avi"
    path.write_text("this is not a video")
    with pytest.raises(SourceError, match="cannot open video file"):
        open_source(str(path))


def test_a_video_file_that_opens_but_decodes_no_frame_is_refused_at_open(tmp_path):
    """A real video's header followed by noise: OpenCV opens it, its first read fails."""
    path = tmp_path / "clip.mp4"
    noise = np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes()
    path.write_bytes(write_video(tmp_path / "real.avi", smooth_frames(3)).read_bytes()[:600] + noise)
    assert cv2.VideoCapture(str(path)).isOpened()
    with pytest.raises(SourceError, match="cannot open video file .*clip.mp4: .*; no frame decodes"):
        open_source(str(path))


def test_live_source_that_ends_is_a_disconnect(tmp_path):
    path = write_video(tmp_path / "live.avi", smooth_frames(3))
    source = CaptureSource(str(path), "url")   # a file read as if it were a network stream
    got = []
    with pytest.raises(SourceError, match="disconnected or stopped after 3 frame"):
        for frame in source:
            got.append(frame)
    assert [f.index for f in got] == [0, 1, 2]
    assert got[0].timestamp == 0 and got[2].timestamp >= got[1].timestamp >= 0


def test_jetson_template():
    pipeline = jetson_csi_pipeline(1, 640, 480, 15)
    assert pipeline.startswith("nvarguscamerasrc sensor-id=1 ! ")
    assert "width=640,height=480,framerate=15/1" in pipeline
    assert pipeline.endswith("appsink drop=true max-buffers=2")
