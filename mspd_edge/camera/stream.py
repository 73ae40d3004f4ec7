"""Protect a stream of frames: capture thread -> bounded queue -> protector thread -> consumer.

::

    frames --[capture thread]--> input queue --[protector thread]--> output queue --> for f in stream
             (drop oldest or block           (greedy batches of up to        (the caller: the camera
              when the queue is full)         batch_size frames)              command writes here)

* A frame's noise is the per-image stream of its own pixels (``image_seed(seed, image_key(frame))``,
  ``mspd_edge.noise``), so the result of a frame does not depend on how frames were batched,
  nor on which other frames were dropped. The resize rule and the 8-bit
  budget are the pipeline's (``mspd_edge.imaging``), so frames of any size work.
* The protector takes whatever is queued, up to ``batch_size`` frames, without waiting for more:
  a slow live source gets batches of one (low latency), a file keeps the queue full (full
  batches, best throughput).
* Policy when the protector falls behind: ``drop=True`` discards the oldest queued frame to make
  room for the new one (live sources: latency stays bounded); ``drop=False`` blocks the capture
  (no frame lost; a live camera then loses frames in its driver instead).
* ``stop()`` (thread- and signal-safe): no frame read after it is accepted; every frame accepted
  before it is still protected and yielded, then the iteration ends. It does not wait for a
  capture blocked in a read. ``close()`` (thread- and signal-safe too) abandons the frames in
  flight: the iteration ends at the consumer's next step, so a frame being written is finished.
* A source that raises (e.g. :class:`~mspd_edge.camera.sources.SourceError` on a disconnect) ends
  the stream like ``stop()``: what was captured is yielded, then its exception is raised. An
  error of the backend is raised as soon as the consumer asks for the next frame.
"""
import queue
import threading
from dataclasses import dataclass

import cv2
import numpy as np

from ..pipeline import Settings, protect_batch
from .sources import Frame
from .stats import StreamStats

POLL = 0.05   # seconds between checks of the stop/abort flags while a thread waits
_END = object()


@dataclass
class ProtectedFrame:
    """A protected frame: same index, timestamp, size and channels as its source frame.

    ``image``: the protected uint8 pixels, in the stream's colour order; ``original``: the frame
    as it came in; ``label``: the class the protection used; ``captured``: monotonic capture time.
    """

    index: int
    image: np.ndarray
    original: np.ndarray
    timestamp: float | None
    label: int
    captured: float


def protect_stream(frames, backend, settings=None, *, drop=False, queue_size=None, color="rgb",
                   stats=None):
    """A :class:`ProtectedStream` over ``frames``: iterate it for :class:`ProtectedFrame` items.

    ``frames``: any iterable of uint8 images (``[H, W, 3]``; gray and alpha as in ``protect``) or
    of :class:`~mspd_edge.camera.sources.Frame` items (e.g. a source of
    :func:`~mspd_edge.camera.sources.open_source`); plain images are numbered 0, 1, ... .
    ``backend``: any backend of the pipeline's protocol (``mspd_edge.pipeline``), e.g.
    ``TorchBackend``. ``settings``: :class:`~mspd_edge.pipeline.Settings` (default: the paper's,
    fresh seed; the resolved ones, seed included, are ``stream.settings``). ``drop``: the policy
    when the protector falls behind (module docstring). ``queue_size``: frames waiting at most
    (default: one batch with ``drop``, for latency; two without, for throughput). ``color``:
    "rgb", or "bgr" for frames straight from OpenCV (the output is then BGR too).

    Example::

        with protect_stream(frames, TorchBackend(backbone, classifier), Settings(seed=1)) as stream:
            for frame in stream:
                upload(frame.image)
    """
    return ProtectedStream(frames, backend, settings or Settings(), drop=drop,
                           queue_size=queue_size, color=color, stats=stats)


class ProtectedStream:
    """The threads, queues and counters of one protected stream (see the module docstring)."""

    def __init__(self, frames, backend, settings, *, drop=False, queue_size=None, color="rgb",
                 stats=None):
        if color not in ("rgb", "bgr"):
            raise ValueError(f"color must be 'rgb' or 'bgr', got {color!r}")
        self.backend, self.settings = backend, settings.resolved(backend)
        if self.settings.label_mode == "gt":
            raise ValueError("label mode 'gt' is not available for streams: use 'classifier' or 'couple'")
        batch = self.settings.batch_size
        self.drop, self.color = drop, color
        self.queue_size = queue_size or (batch if drop else 2 * batch)
        self.stats = stats or StreamStats()
        self.source_error = None
        self._frames = frames
        self._inq = queue.Queue(self.queue_size)
        self._outq = queue.Queue(max(2, 2 * batch))
        self._lock = threading.RLock()
        self._stopping = self._source_done = False
        self._accepted = self._taken = self._dropped = 0
        self._abort = threading.Event()
        self._error = None
        self._threads = []

    # -- control ------------------------------------------------------------------------------
    def stop(self):
        """Accept no more frames; the ones accepted are still protected and yielded."""
        with self._lock:
            self._stopping = True

    @property
    def stopping(self):
        return self._stopping

    def close(self):
        """Abandon the stream now: frames in flight are lost, the threads end soon after."""
        self.stop()
        self._abort.set()

    def capture_finished(self, timeout=0.0):
        """Whether the capture thread has ended (after waiting up to ``timeout`` seconds)."""
        capture = self._threads[0] if self._threads else None
        if capture is not None:
            capture.join(timeout)
        return capture is None or not capture.is_alive()

    def finished(self, timeout=0.0):
        """Whether all the threads of the stream have ended (waiting up to ``timeout`` seconds)."""
        for thread in self._threads:
            thread.join(timeout)
        return not any(thread.is_alive() for thread in self._threads)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- consumer -----------------------------------------------------------------------------
    def __iter__(self):
        if self._threads:
            raise RuntimeError("a stream can be iterated only once")
        self._threads = [threading.Thread(target=self._capture, name="mspd-capture", daemon=True),
                         threading.Thread(target=self._protect, name="mspd-protect", daemon=True)]
        self.stats.start()
        for thread in self._threads:
            thread.start()
        try:
            while not self._abort.is_set():
                try:
                    item = self._outq.get(timeout=POLL)
                except queue.Empty:
                    continue
                if item is _END or self._abort.is_set():
                    break
                yield item
                self.stats.add_out(item.captured)   # the consumer is done with it
            if self._abort.is_set():
                return   # closed: the frames in flight are abandoned, errors included
            if self._error is not None:
                raise self._error
            if self.source_error is not None:
                raise self.source_error
        finally:
            self.close()

    # -- capture thread -----------------------------------------------------------------------
    def _capture(self):
        frames = iter(self._frames)
        try:
            position = 0
            while not self._abort.is_set():
                try:
                    item = next(frames)
                except StopIteration:
                    break
                frame = item if isinstance(item, Frame) else Frame(position, item)
                position += 1
                with self._lock:
                    if self._stopping:
                        break   # read after the stop request: not part of the stream
                    self._accepted += 1
                self.stats.add_captured()
                self._put_input(frame)
        except BaseException as exc:   # the source failed: the frames before it still go out
            self.source_error = exc
        finally:
            with self._lock:
                self._source_done = True
            close = getattr(frames, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:   # a failing close must not hide how the stream ended
                    pass

    def _put_input(self, frame):
        if self.drop:
            while True:
                try:
                    self._inq.put_nowait(frame)
                    return
                except queue.Full:
                    try:
                        self._inq.get_nowait()
                    except queue.Empty:
                        continue
                    self._dropped += 1
                    self.stats.add_dropped()
        while not self._abort.is_set():
            try:
                self._inq.put(frame, timeout=POLL)
                return
            except queue.Full:
                continue

    # -- protector thread ---------------------------------------------------------------------
    def _protect(self):
        try:
            while not self._abort.is_set():
                batch = self._next_batch(self.settings.batch_size)
                if batch is None:
                    break
                if batch:
                    self._run(batch)
        except BaseException as exc:
            self._error = exc
            self.stop()
        finally:
            self._put_output(_END)

    def _next_batch(self, size):
        """Up to ``size`` queued frames; ``[]`` when none yet; None when the stream is over."""
        try:
            batch = [self._inq.get(timeout=POLL)]
        except queue.Empty:
            with self._lock:
                over = self._stopping or self._source_done
                accounted = self._taken + self._dropped >= self._accepted
            return None if over and accounted else []
        while len(batch) < size:
            try:
                batch.append(self._inq.get_nowait())
            except queue.Empty:
                break
        self._taken += len(batch)
        return batch

    def _run(self, batch):
        bgr = self.color == "bgr"
        images = [_swap_rb(f.image) if bgr else f.image for f in batch]
        results = protect_batch(images, self.backend, self.settings)
        self.stats.add_protected(len(batch))
        for frame, (pixels, label) in zip(batch, results):
            self._put_output(ProtectedFrame(frame.index, _swap_rb(pixels) if bgr else pixels,
                                            frame.image, frame.timestamp, label, frame.captured))

    def _put_output(self, item):
        while not self._abort.is_set():
            try:
                self._outq.put(item, timeout=POLL)
                return
            except queue.Full:
                continue


def _swap_rb(image):
    """RGB(A) <-> BGR(A); gray unchanged."""
    if image.ndim == 2 or image.shape[2] < 3:
        return image
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB if image.shape[2] == 3 else cv2.COLOR_BGRA2RGBA)
