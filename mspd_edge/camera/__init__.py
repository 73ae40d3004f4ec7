"""On-device camera pipeline: protect frames of a camera, stream, video file or image folder.

Python API for apps::

    from mspd_edge.camera import open_source, protect_stream
    from mspd_edge.pipeline import Settings

    with open_source("0") as source, protect_stream(source, backend, Settings(seed=1)) as stream:
        for frame in stream:          # ProtectedFrame: index, image (RGB), timestamp, label
            upload(frame.image)

``backend`` is any backend of the pipeline's protocol (``mspd_edge.pipeline``), e.g.
``mspd_edge.torch_backend.TorchBackend(backbone, classifier)``. The command line is
``mspd-edge camera`` (:mod:`mspd_edge.cli.camera`); see docs/camera.md.
"""
from .sinks import PngFolderSink, SinkError, VideoSink, WindowSink
from .sources import Frame, SourceError, jetson_csi_pipeline, open_source
from .stats import StreamStats
from .stream import ProtectedFrame, ProtectedStream, protect_stream

__all__ = ["Frame", "PngFolderSink", "ProtectedFrame", "ProtectedStream", "SinkError",
           "SourceError", "StreamStats", "VideoSink", "WindowSink", "jetson_csi_pipeline",
           "open_source", "protect_stream"]
