"""Device memory, streams and device facts for the TensorRT runner: the one CUDA module.

Built on NVIDIA's cuda-python (``cuda.bindings.runtime``; ``cuda.cudart`` in releases before
12.6), not pycuda:

* it is what NVIDIA's own TensorRT 10 samples use (``samples/python/common_runtime.py``);
* it ships prebuilt wheels for x86-64 and aarch64 (Jetson), while pycuda compiles against the
  CUDA toolkit at install time (nvcc and headers on the device, often the failing step);
* it uses the CUDA runtime's primary context, the one TensorRT and onnxruntime-gpu use, where
  ``pycuda.autoinit`` makes its own context that must be pushed around them.

Imported lazily: importing ``mspd_edge.runtime`` never needs CUDA.
"""
import numpy as np


class CudaUnavailable(RuntimeError):
    """cuda-python or a CUDA device is missing (says what to install)."""


_CUDART = None


def cudart():
    """The cuda-python runtime module (imported on first use)."""
    global _CUDART
    if _CUDART is None:
        try:
            from cuda.bindings import runtime as module
        except ImportError:
            try:
                from cuda import cudart as module
            except ImportError as exc:
                raise CudaUnavailable("cuda-python is not installed: pip install cuda-python "
                                      "(the major version matching your CUDA, e.g. "
                                      "'cuda-python>=12,<13' on JetPack 6)") from exc
        _CUDART = module
    return _CUDART


def check(result):
    """Unwrap a cuda-python ``(error, *values)`` tuple; raises on an error code."""
    rt = cudart()
    err, values = result[0], result[1:]
    if err != rt.cudaError_t.cudaSuccess:
        name = rt.cudaGetErrorName(err)[1]
        name = name.decode() if isinstance(name, bytes) else str(name)
        raise RuntimeError(f"CUDA error {name}")
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def device_count():
    """Number of CUDA devices (0 when cuda-python or the driver is missing)."""
    try:
        return int(check(cudart().cudaGetDeviceCount()))
    except (CudaUnavailable, RuntimeError):
        return 0


def set_device(device_id):
    check(cudart().cudaSetDevice(int(device_id)))


def device_info(device_id=0):
    """``{"name", "compute_capability", "total_memory_mb"}`` of a device (engine cache key)."""
    props = check(cudart().cudaGetDeviceProperties(int(device_id)))
    name = props.name
    name = name.split(b"\0", 1)[0].decode() if isinstance(name, bytes) else str(name)
    return {"name": name, "compute_capability": f"{props.major}.{props.minor}",
            "total_memory_mb": int(props.totalGlobalMem) // 2**20}


class Stream:
    """A CUDA stream; ``handle`` is the integer TensorRT's ``execute_async_v3`` takes."""

    def __init__(self):
        self._stream = check(cudart().cudaStreamCreate())

    @property
    def handle(self):
        return int(self._stream)

    def synchronize(self):
        check(cudart().cudaStreamSynchronize(self._stream))

    def free(self):
        if self._stream is not None:
            check(cudart().cudaStreamDestroy(self._stream))
            self._stream = None


class DeviceBuffer:
    """Device memory that grows on demand (never shrinks until freed)."""

    def __init__(self, nbytes=0):
        self.ptr, self.nbytes = 0, 0
        if nbytes:
            self.reserve(nbytes)

    def reserve(self, nbytes):
        """Make room for ``nbytes``; the contents are lost when it reallocates."""
        if nbytes > self.nbytes:
            self.free()
            self.ptr = int(check(cudart().cudaMalloc(int(nbytes))))
            self.nbytes = int(nbytes)
        return self.ptr

    def copy_from(self, array, stream):
        """Queue a host-to-device copy of contiguous ``array`` on ``stream``."""
        array = np.ascontiguousarray(array)
        self.reserve(max(array.nbytes, 1))
        if array.nbytes:
            rt = cudart()
            check(rt.cudaMemcpyAsync(self.ptr, array.ctypes.data, array.nbytes,
                                     rt.cudaMemcpyKind.cudaMemcpyHostToDevice, stream._stream))
        return array   # keep it alive until the stream is synchronised

    def copy_to(self, array, stream):
        """Queue a device-to-host copy into contiguous ``array`` on ``stream``."""
        if array.nbytes:
            rt = cudart()
            check(rt.cudaMemcpyAsync(array.ctypes.data, self.ptr, array.nbytes,
                                     rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, stream._stream))
        return array

    def free(self):
        if self.ptr:
            check(cudart().cudaFree(self.ptr))
        self.ptr, self.nbytes = 0, 0
