"""Where protected frames go: a folder of PNG frames, a lossless video, or a window.

* :class:`PngFolderSink`: ``frame_000000.png``, ... named by source frame index (gaps are
  dropped or unreadable frames), each written atomically (temporary file + rename: a file named
  ``frame_*.png`` is always complete), plus ``timestamps.csv`` (``file,index,timestamp_s``).
* :class:`VideoSink`: a video through ``cv2.VideoWriter``; lossless FFV1 in Matroska (``.mkv``)
  by default. Before any frame is protected, a probe writes and decodes a few frames to check
  that the installed OpenCV can write the codec into that container and, for the lossless
  codecs, that it is bit exact. Lossy codecs only with ``lossy=True`` (they weaken the
  protection). Frame timestamps go to ``<video>.timestamps.csv`` (``frame,index,timestamp_s``):
  the video itself has a constant rate.
* :class:`WindowSink`: ``cv2.imshow`` (needs OpenCV with a GUI, not the headless wheel);
  ``q`` or Esc in the window asks the stream to stop.

A sink closed without a frame written leaves nothing: no header-only timestamps file, no
folder it made. Frames come in RGB (the package's order) and are converted to OpenCV's BGR here.
"""
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from ..util import write_atomic

VIDEO_SUFFIXES = (".mkv", ".avi", ".mp4", ".mov", ".m4v", ".webm")
LOSSLESS_CODECS = ("FFV1", "HFYU", "PNG ")   # checked bit exact by the probe
DEFAULT_CODEC = "FFV1"
FRAME_PATTERN = "frame_{:06d}.png"
FRAME_GLOB = "frame_*.png"
TIMESTAMPS = "timestamps.csv"
LOSSY_WARNING = ("warning: lossy codec {codec}: re-encoding changes the protected pixels and "
                 "weakens the protection; use a lossless codec (FFV1) or PNG frames to keep it")


class SinkError(Exception):
    """An output that cannot be created or written (one line)."""


def is_video_path(path):
    """Whether ``path`` names a video file (by suffix) rather than a folder of frames."""
    path = Path(path)
    return path.suffix.lower() in VIDEO_SUFFIXES and not path.is_dir()


def to_bgr(image):
    """OpenCV's channel order for an RGB(A) or gray uint8 image."""
    if image.ndim == 2 or image.shape[2] == 1:
        return image
    if image.shape[2] == 2:   # gray + alpha: PNG via OpenCV has no LA, use BGRA
        gray, alpha = image[:, :, 0], image[:, :, 1]
        return np.dstack([gray, gray, gray, alpha])
    return cv2.cvtColor(image, cv2.COLOR_RGB2BGR if image.shape[2] == 3 else cv2.COLOR_RGBA2BGRA)


def normalize_codec(codec):
    """A FOURCC padded to four characters, upper case (``png`` -> ``PNG ``)."""
    code = str(codec).upper()
    if not 1 <= len(code) <= 4:
        raise SinkError(f"codec {codec!r} is not a FOURCC (one to four characters, e.g. FFV1)")
    return code.ljust(4)


def _missing_folders(folder):
    """``folder`` and those of its parents that do not exist yet, deepest first."""
    folder = Path(folder).absolute()
    return [f for f in (folder, *folder.parents) if not f.exists()]


def _discard_empty_output(log, folders):
    """After a run that wrote no frame: remove the header-only ``log`` and the ``folders`` made
    for the output (deepest first) that are empty."""
    log.path.unlink(missing_ok=True)
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:   # not empty, or gone
            return


class Sink:
    """Base of the sinks: ``write(frame)`` a :class:`~mspd_edge.camera.stream.ProtectedFrame`."""

    quit_requested = False

    def write(self, frame):
        raise NotImplementedError

    def close(self):
        """Finish the output (idempotent)."""

    def describe(self):
        return {}


class _TimestampLog:
    """A CSV file, one line per written frame, flushed as it goes."""

    def __init__(self, path, header):
        self.path = Path(path)
        self.file = open(self.path, "w", encoding="utf-8", newline="")
        self.file.write(header + "\n")
        self.file.flush()

    def add(self, first, index, timestamp):
        stamp = "" if timestamp is None else f"{timestamp:.6f}"
        self.file.write(f"{first},{index},{stamp}\n")
        self.file.flush()

    def close(self):
        if not self.file.closed:
            self.file.close()


class PngFolderSink(Sink):
    """Lossless PNG frames in ``folder`` (created); refuses a folder with frames unless ``overwrite``."""

    def __init__(self, folder, overwrite=False):
        self.folder = Path(folder)
        self.created = _missing_folders(self.folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            old = sorted(self.folder.glob(FRAME_GLOB))
            if old and not overwrite:
                raise SinkError(f"{self.folder} already holds {len(old)} frame(s) (frame_*.png): "
                                "pass --overwrite to delete them first, or choose another folder")
            for path in old:
                path.unlink()
            self.timestamps = _TimestampLog(self.folder / TIMESTAMPS, "file,index,timestamp_s")
        except OSError as exc:
            raise SinkError(f"cannot write into {self.folder}: {exc.strerror or exc}") from None
        self.written = 0

    def write(self, frame):
        name = FRAME_PATTERN.format(frame.index)
        ok, data = cv2.imencode(".png", to_bgr(frame.image))
        if not ok:
            raise SinkError(f"cannot encode frame {frame.index} as PNG")
        try:
            write_atomic(self.folder / name, data.tobytes())
            self.timestamps.add(name, frame.index, frame.timestamp)
        except OSError as exc:
            raise SinkError(f"cannot write {self.folder / name}: {exc.strerror or exc}") from None
        self.written += 1

    def close(self):
        self.timestamps.close()
        if not self.written:
            _discard_empty_output(self.timestamps, self.created)

    def describe(self):
        return {"kind": "png-folder", "path": str(self.folder), "written": self.written,
                "timestamps": str(self.folder / TIMESTAMPS)}


def probe_video_writer(suffix, codec, lossless_check=True):
    """None when this OpenCV can write ``codec`` into a ``suffix`` file (bit exact when asked), else why."""
    fourcc = cv2.VideoWriter_fourcc(*normalize_codec(codec))
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(3)]
    with tempfile.TemporaryDirectory(prefix="mspd-probe-") as folder:
        path = os.path.join(folder, "probe" + suffix)
        writer = cv2.VideoWriter(path, fourcc, 10.0, (64, 48))
        if not writer.isOpened():
            return "the writer does not open"
        for frame in frames:
            writer.write(frame)
        writer.release()
        if not lossless_check:
            return None
        reader = cv2.VideoCapture(path)
        try:
            for k, frame in enumerate(frames):
                ok, back = reader.read()
                if not ok:
                    return f"the probe video cannot be read back (frame {k})"
                if back.shape != frame.shape or not np.array_equal(back, frame):
                    return "the probe video does not decode bit exact (not lossless here)"
        finally:
            reader.release()
    return None


class VideoSink(Sink):
    """A video file through ``cv2.VideoWriter``, opened at the first frame (its size)."""

    def __init__(self, path, fps, codec=DEFAULT_CODEC, lossy=False, overwrite=False):
        self.path, self.fps = Path(path), float(fps)
        self.codec = normalize_codec(codec)
        self.lossless = self.codec in LOSSLESS_CODECS
        if not self.lossless and not lossy:
            raise SinkError(f"codec {self.codec.strip()} is not one of the lossless codecs "
                            f"({', '.join(c.strip() for c in LOSSLESS_CODECS)}): lossy re-encoding "
                            "weakens the protection; pass --lossy to accept that")
        if self.path.exists() and not overwrite:
            raise SinkError(f"{self.path} exists: pass --overwrite to replace it")
        why = probe_video_writer(self.path.suffix.lower(), self.codec, lossless_check=self.lossless)
        if why is not None:
            raise SinkError(f"this OpenCV ({cv2.__version__}) cannot write {self.codec.strip()} into "
                            f"{self.path.suffix} files: {why}; try .mkv with FFV1, or write PNG "
                            "frames (give a folder as the output)")
        self.created = _missing_folders(self.path.parent)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.timestamps = _TimestampLog(f"{self.path}.timestamps.csv", "frame,index,timestamp_s")
        except OSError as exc:
            raise SinkError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        self.writer, self.size, self.written = None, None, 0

    def write(self, frame):
        image = frame.image
        if image.ndim == 3 and image.shape[2] in (2, 4):
            raise SinkError(f"frame {frame.index} has an alpha channel, which a video cannot keep: "
                            "write PNG frames (give a folder as the output)")
        bgr = to_bgr(image)
        if bgr.ndim == 2 or bgr.shape[2] == 1:
            bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
        size = (bgr.shape[1], bgr.shape[0])
        if self.writer is None:
            self.writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*self.codec),
                                          self.fps, size)
            if not self.writer.isOpened():
                raise SinkError(f"cannot open {self.path} for writing ({self.codec.strip()}, "
                                f"{size[0]}x{size[1]})")
            self.size = size
        elif size != self.size:
            raise SinkError(f"frame {frame.index} is {size[0]}x{size[1]}, the video "
                            f"{self.size[0]}x{self.size[1]}: a video needs frames of one size; "
                            "write PNG frames (give a folder as the output)")
        self.writer.write(bgr)
        self.timestamps.add(self.written, frame.index, frame.timestamp)
        self.written += 1

    def close(self):
        if self.writer is not None:
            self.writer.release()
            self.writer = None
        self.timestamps.close()
        if not self.written:
            _discard_empty_output(self.timestamps, self.created)

    def describe(self):
        return {"kind": "video", "path": str(self.path), "codec": self.codec.strip(),
                "lossless": self.lossless, "fps": self.fps, "written": self.written,
                "size": None if self.size is None else list(self.size),
                "timestamps": str(self.timestamps.path)}


class WindowSink(Sink):
    """Shows each protected frame in a window; ``q`` or Esc sets ``quit_requested``."""

    def __init__(self, title="mspd-edge camera (protected)"):
        self.title = title
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise SinkError("--show needs OpenCV with a GUI: this one has none (install "
                            "opencv-python instead of opencv-python-headless)") from None
        self.shown = 0

    def write(self, frame):
        cv2.imshow(self.title, to_bgr(frame.image))
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), 27):
            self.quit_requested = True
        self.shown += 1

    def close(self):
        try:
            cv2.destroyWindow(self.title)
        except cv2.error:
            pass

    def describe(self):
        return {"kind": "window", "shown": self.shown}
