"""Video sources: open ``SRC`` and iterate its frames (RGB, in source order, with timestamps).

``SRC`` is one of (tried in this order):

* ``csi`` or ``csi:N``: the Jetson CSI camera N through the GStreamer template
  :data:`JETSON_CSI` (``nvarguscamerasrc``); needs OpenCV built with GStreamer;
* a device index (``0``): a V4L2 camera, through OpenCV's default backend;
* a URL (``rtsp://``, ``http://``, ``udp://``, ...): through OpenCV's FFmpeg backend;
* an existing folder: its images (``mspd_edge.io.SUFFIXES``), sorted by name, decoded by Pillow;
* an existing file: a video, through OpenCV;
* a GStreamer pipeline (any other string with ``!``) ending in ``appsink``: ``cv2.CAP_GSTREAMER``.

Cameras, URLs and GStreamer pipelines are *live*: frames come at the sensor's pace whether or
not they are read, a failed read means the source disconnected, and timestamps are seconds
since the first frame on a monotonic clock. Video files are not live: their timestamps are the
container's (``CAP_PROP_POS_MSEC``) and a failed read is the end of the stream. Folders give
no timestamps (``None``).
"""
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .. import defaults
from ..io import ImageError, discover, read_image

LIVE = ("csi", "device", "url", "gstreamer")
KINDS = LIVE + ("file", "folder")
# The Jetson CSI camera (Argus) as BGR frames for OpenCV; {sensor}, {width}, {height}, {fps}.
# nvvidconv does the NV12 -> BGRx conversion on the VIC, videoconvert only drops the x.
JETSON_CSI = ("nvarguscamerasrc sensor-id={sensor} ! "
              "video/x-raw(memory:NVMM),width={width},height={height},framerate={fps}/1,format=NV12 ! "
              "nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! "
              "appsink drop=true max-buffers=2")
CSI_DEFAULTS = {"width": 1280, "height": 720, "fps": 30}
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_CSI = re.compile(r"^csi(?::(\d+))?$")


class SourceError(Exception):
    """A source that cannot be opened, or that failed or disconnected mid-stream (one line)."""


@dataclass
class Frame:
    """One captured frame: its position in the source, uint8 pixels and timestamp.

    ``image``: RGB ``[H, W, 3]`` (folders may also give gray ``[H, W]`` or an alpha channel);
    ``timestamp``: seconds (see the module docstring) or None; ``captured``: ``time.monotonic()``
    when it was read, the start of its latency.
    """

    index: int
    image: np.ndarray
    timestamp: float | None = None
    captured: float = field(default_factory=time.monotonic)


def jetson_csi_pipeline(sensor=0, width=None, height=None, fps=None):
    """The GStreamer pipeline string of Jetson CSI camera ``sensor`` (:data:`JETSON_CSI`)."""
    return JETSON_CSI.format(sensor=sensor, width=width or CSI_DEFAULTS["width"],
                             height=height or CSI_DEFAULTS["height"],
                             fps=int(round(fps or CSI_DEFAULTS["fps"])))


def source_kind(spec):
    """The kind of ``spec`` (one of :data:`KINDS`); raises :class:`SourceError` when none fits."""
    spec = str(spec).strip()
    if _CSI.match(spec):
        return "csi"
    if spec.isdigit():
        return "device"
    if _URL.match(spec):
        return "url"
    path = Path(spec)
    if path.is_dir():
        return "folder"
    if path.is_file():
        return "file"
    if "!" in spec:
        return "gstreamer"
    raise SourceError(f"no such file or folder: {spec} (nor a device index, URL or GStreamer pipeline)")


def open_source(spec, capture_size=None, capture_fps=None, max_pixels=defaults.MAX_PIXELS):
    """Open ``spec`` (see the module docstring) as a :class:`Source`; raises :class:`SourceError`.

    ``capture_size`` ``(width, height)`` and ``capture_fps`` are requested from cameras (devices
    and the CSI template); files and folders ignore them. ``max_pixels``: a folder's larger
    images are refused (:func:`mspd_edge.io.read_image`).
    """
    spec = str(spec).strip()
    kind = source_kind(spec)
    if kind == "folder":
        return FolderSource(spec, max_pixels)
    return CaptureSource(spec, kind, capture_size, capture_fps)


class Source:
    """Base of the sources: iterate for :class:`Frame` items; ``close()`` releases the source."""

    kind = ""
    live = False
    release_on_close = True   # False when a read may still block in another thread
    fps = None      # nominal frames per second, when the source tells
    size = None     # (width, height) when known before reading

    def __init__(self, spec):
        self.spec = spec
        self.errors = []   # [{"input", "error"}] items skipped without ending the stream (folders)
        self.on_error = None   # called with each such item as it happens (from the reading thread)

    def __iter__(self):
        raise NotImplementedError

    def close(self):
        """Release the source (idempotent)."""

    def describe(self):
        """A JSON-ready description for the report."""
        return {"spec": self.spec, "kind": self.kind, "live": self.live, "fps": self.fps,
                "size": None if self.size is None else list(self.size)}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class CaptureSource(Source):
    """A device, URL, GStreamer pipeline or video file through ``cv2.VideoCapture``."""

    def __init__(self, spec, kind, capture_size=None, capture_fps=None):
        super().__init__(spec)
        self.kind, self.live = kind, kind in LIVE
        self.cap = self._open(spec, kind, capture_size, capture_fps)
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if 0 < fps < 1000 else None
        width, height = (int(self.cap.get(p)) for p in (cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT))
        self.size = (width, height) if width > 0 and height > 0 else None
        self.read_frames = 0
        self._first = None if self.live else self._first_frame()

    @staticmethod
    def _open(spec, kind, size, fps):
        if kind in ("csi", "gstreamer"):
            if not cv2.videoio_registry.hasBackend(cv2.CAP_GSTREAMER):
                raise SourceError(f"cannot open {_short(spec)}: this OpenCV ({cv2.__version__}) is built "
                                  "without GStreamer (on a Jetson use the system OpenCV, e.g. the "
                                  "python3-opencv of JetPack, in a venv made with --system-site-packages)")
            if kind == "csi":
                width, height = size or (None, None)
                spec = jetson_csi_pipeline(int(_CSI.match(spec).group(1) or 0), width, height, fps)
            cap = cv2.VideoCapture(spec, cv2.CAP_GSTREAMER)
        elif kind == "device":
            cap = cv2.VideoCapture(int(spec))
            if cap.isOpened():
                if size:
                    cap.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
                    cap.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
                if fps:
                    cap.set(cv2.CAP_PROP_FPS, fps)
        elif kind == "url":
            cap = cv2.VideoCapture(spec, cv2.CAP_FFMPEG)
        else:
            cap = cv2.VideoCapture(spec)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot open {_what(kind, spec)}: {_why(kind)}")
        return cap

    def _first_frame(self):
        """A file's first frame and its timestamp, read at open: a file OpenCV opens but cannot
        decode is refused before any output exists."""
        ok, bgr = self.cap.read()
        if not ok or bgr is None:
            self.cap.release()
            raise SourceError(f"cannot open {_what(self.kind, self.spec)}: {_why(self.kind)}; "
                              "no frame decodes")
        return bgr, self.cap.get(cv2.CAP_PROP_POS_MSEC) / 1000

    def _reads(self):
        """``(bgr, captured, timestamp of a file)`` per frame, the one read at open first."""
        if self._first is not None:
            (bgr, timestamp), self._first = self._first, None
            yield bgr, time.monotonic(), timestamp
        while True:
            ok, bgr = self.cap.read()
            captured = time.monotonic()
            if not ok or bgr is None:
                return
            yield bgr, captured, None if self.live else self.cap.get(cv2.CAP_PROP_POS_MSEC) / 1000

    def __iter__(self):
        start = None
        for bgr, captured, timestamp in self._reads():
            self.read_frames += 1
            if self.live:
                start = captured if start is None else start
                timestamp = captured - start
            yield Frame(self.read_frames - 1, _to_rgb(bgr), timestamp, captured)
        if self.read_frames == 0:
            raise SourceError(f"{_what(self.kind, self.spec)} opened but gave no frame")
        if self.live:
            raise SourceError(f"{_what(self.kind, self.spec)} disconnected or stopped after "
                              f"{self.read_frames} frame(s)")

    def close(self):
        if self.cap is not None and self.release_on_close:
            self.cap.release()
            self.cap = None


class FolderSource(Source):
    """The images of a folder, sorted by file name; an unreadable image is skipped and recorded."""

    kind = "folder"

    def __init__(self, spec, max_pixels=defaults.MAX_PIXELS):
        super().__init__(spec)
        self.max_pixels = max_pixels
        self.files = [s.path for s in discover([spec])[0]]
        if not self.files:
            raise SourceError(f"cannot open folder {spec}: no image file in it")

    def __iter__(self):
        for index, path in enumerate(self.files):
            try:
                pixels = read_image(path, self.max_pixels).pixels
            except ImageError as exc:
                self.errors.append({"input": str(path), "error": str(exc)})
                if self.on_error is not None:
                    self.on_error(self.errors[-1])
                continue
            yield Frame(index, pixels, None, time.monotonic())


def _to_rgb(bgr):
    if bgr.dtype != np.uint8:
        raise SourceError(f"the source gives {bgr.dtype} pixels, only 8-bit frames are supported")
    if bgr.ndim == 2:
        return bgr
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB if bgr.shape[2] == 3 else cv2.COLOR_BGRA2RGBA)


def _short(spec, limit=80):
    return spec if len(spec) <= limit else spec[:limit - 3] + "..."


def _what(kind, spec):
    names = {"csi": "Jetson CSI camera", "device": "camera", "url": "stream",
             "gstreamer": "GStreamer pipeline", "file": "video file"}
    return f"{names[kind]} {_short(spec)}"


def _why(kind):
    return {"device": "no such device, busy, or no permission (see v4l2-ctl --list-devices)",
            "url": "unreachable, refused, or not a stream OpenCV's FFmpeg can read",
            "file": "not a video OpenCV can decode (no FFmpeg backend, unknown format, or damaged)",
            "gstreamer": "the pipeline does not start (check it with gst-launch-1.0; it must end "
                         "in appsink)",
            "csi": "the camera does not start (check it with nvgstcapture-1.0; is nvargus-daemon running?)",
            }[kind]
