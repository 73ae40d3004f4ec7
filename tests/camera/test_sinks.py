"""Outputs: atomic PNG frames with timestamps, a bit-exact FFV1 video, the lossy guard."""
import numpy as np
import pytest

from camera_helpers import decode_video, read_png_frames, smooth_frames
from mspd_edge.camera import PngFolderSink, SinkError, VideoSink, WindowSink
from mspd_edge.camera.sinks import is_video_path, probe_video_writer
from mspd_edge.camera.stream import ProtectedFrame


def _frames(images, start=0):
    return [ProtectedFrame(start + k, image, image, k / 10, 0, 0.0) for k, image in enumerate(images)]


def test_png_folder(tmp_path):
    images = smooth_frames(3, (20, 10))
    sink = PngFolderSink(tmp_path / "out")
    for frame in _frames(images, start=5):
        sink.write(frame)
    sink.close()
    got = read_png_frames(tmp_path / "out")
    assert sorted(got) == [5, 6, 7] and all(np.array_equal(got[5 + k], images[k]) for k in range(3))
    assert (tmp_path / "out" / "timestamps.csv").read_text().splitlines() == [
        "file,index,timestamp_s", "frame_000005.png,5,0.000000", "frame_000006.png,6,0.100000",
        "frame_000007.png,7,0.200000"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "frame_000005.png", "frame_000006.png", "frame_000007.png", "timestamps.csv"]   # no temp files


def test_png_folder_keeps_an_earlier_run_unless_overwrite(tmp_path):
    sink = PngFolderSink(tmp_path)
    sink.write(_frames(smooth_frames(1))[0])
    sink.close()
    with pytest.raises(SinkError, match="already holds 1 frame"):
        PngFolderSink(tmp_path)
    PngFolderSink(tmp_path, overwrite=True).close()
    assert not list(tmp_path.glob("frame_*.png"))


def test_sinks_closed_without_a_frame_leave_nothing(tmp_path):
    PngFolderSink(tmp_path / "new" / "frames").close()
    VideoSink(tmp_path / "made" / "out.mkv", 10.0).close()
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "there").mkdir()
    PngFolderSink(tmp_path / "there").close()
    assert list(tmp_path.iterdir()) == [tmp_path / "there"] and not list((tmp_path / "there").iterdir())


def test_ffv1_video_is_bit_exact(tmp_path):
    images = smooth_frames(4, (32, 24))
    sink = VideoSink(tmp_path / "out.mkv", fps=10)
    for frame in _frames(images):
        sink.write(frame)
    sink.close()
    back = decode_video(tmp_path / "out.mkv")
    assert len(back) == 4 and all(np.array_equal(a, b) for a, b in zip(back, images))
    assert (tmp_path / "out.mkv.timestamps.csv").read_text().splitlines()[1] == "0,0,0.000000"
    assert sink.describe()["lossless"] is True


def test_lossy_codec_needs_consent(tmp_path):
    with pytest.raises(SinkError, match="--lossy"):
        VideoSink(tmp_path / "out.avi", fps=10, codec="MJPG")
    sink = VideoSink(tmp_path / "out.avi", fps=10, codec="MJPG", lossy=True)
    assert sink.describe()["lossless"] is False
    sink.close()


def test_video_refuses_size_changes_alpha_and_existing_files(tmp_path):
    sink = VideoSink(tmp_path / "out.mkv", fps=10)
    sink.write(_frames(smooth_frames(1, (32, 24)))[0])
    with pytest.raises(SinkError, match="frames of one size"):
        sink.write(_frames(smooth_frames(1, (16, 16)))[0])
    with pytest.raises(SinkError, match="alpha"):
        sink.write(_frames([np.zeros((24, 32, 4), np.uint8)])[0])
    sink.close()
    with pytest.raises(SinkError, match="exists"):
        VideoSink(tmp_path / "out.mkv", fps=10)


def test_probe_reports_what_this_opencv_cannot_do():
    assert probe_video_writer(".mkv", "FFV1") is None
    assert "bit exact" in probe_video_writer(".avi", "MJPG")


def test_outputs_by_suffix(tmp_path):
    assert is_video_path(tmp_path / "a.mkv") and is_video_path(tmp_path / "b.AVI")
    assert not is_video_path(tmp_path / "frames") and not is_video_path(tmp_path / "x.png")


def test_window_without_gui_is_a_clear_error():
    import cv2
    try:
        cv2.namedWindow("probe")
        cv2.destroyWindow("probe")
        pytest.skip("this OpenCV has a GUI")
    except cv2.error:
        pass
    with pytest.raises(SinkError, match="GUI"):
        WindowSink()
