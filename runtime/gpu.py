"""CUDA device facts and selection, through the CUDA runtime that Polygraphy loads.

Polygraphy's TensorRT runner makes its streams and buffers with ``libcudart`` (the CUDA
toolkit's or the ``nvidia-cuda-runtime`` wheel's), loaded with ctypes by
``polygraphy.cuda.wrapper()``. This module asks that same library for what the engine cache
keys on and what the runner needs: the device count (``cudaGetDeviceCount``), a device's name
(``cudaGetDeviceProperties[_v2]``) and compute capability (``cudaDeviceGetAttribute``), and the
device to use (``cudaSetDevice``). Imported lazily; nothing here runs without a call.
"""
import ctypes

CUDA_SUCCESS = 0
# cudaDeviceAttr values (stable since CUDA 5).
ATTR_COMPUTE_CAPABILITY_MAJOR = 75
ATTR_COMPUTE_CAPABILITY_MINOR = 76
NAME_BYTES = 256          # cudaDeviceProp.name, the struct's first field: char[256]
PROPS_BYTES = 1 << 14     # room for any CUDA release's cudaDeviceProp (about 1 KiB today)


class CudaUnavailable(RuntimeError):
    """The CUDA runtime library or a CUDA device is missing (one line saying which)."""


def _cudart():
    """The ctypes handle of ``libcudart`` as Polygraphy loads it."""
    try:
        from polygraphy import cuda
        from polygraphy.exception import PolygraphyException
        from polygraphy.logger import G_LOGGER
    except ImportError as exc:
        raise CudaUnavailable("polygraphy is not installed: pip install polygraphy") from exc
    try:
        with G_LOGGER.verbosity(G_LOGGER.CRITICAL):   # its search log is not ours to print
            return cuda.wrapper().handle
    except (OSError, PolygraphyException) as exc:
        raise CudaUnavailable(f"the CUDA runtime library (libcudart) cannot be loaded: {exc}") from None


def _call(function, *args):
    status = getattr(_cudart(), function)(*args)
    if status != CUDA_SUCCESS:
        raise CudaUnavailable(f"{function} failed with CUDA error {status}")


def _properties_function():
    """CUDA 12+ exports ``cudaGetDeviceProperties_v2`` (what its header calls); older only the plain one."""
    cudart = _cudart()
    return next(name for name in ("cudaGetDeviceProperties_v2", "cudaGetDeviceProperties")
                if hasattr(cudart, name))


def device_count():
    """Number of visible CUDA devices (0 without the CUDA runtime, a driver or a device)."""
    count = ctypes.c_int(0)
    try:
        _call("cudaGetDeviceCount", ctypes.byref(count))
    except CudaUnavailable:
        return 0
    return count.value


def set_device(device_id):
    """Make ``device_id`` current for this thread (TensorRT and Polygraphy use the current one)."""
    _call("cudaSetDevice", ctypes.c_int(int(device_id)))


def device_info(device_id=0):
    """``{"name", "compute_capability"}`` of a device, as the engine cache keys them."""
    props = ctypes.create_string_buffer(PROPS_BYTES)
    _call(_properties_function(), props, ctypes.c_int(int(device_id)))
    values = []
    for attribute in (ATTR_COMPUTE_CAPABILITY_MAJOR, ATTR_COMPUTE_CAPABILITY_MINOR):
        value = ctypes.c_int(0)
        _call("cudaDeviceGetAttribute", ctypes.byref(value), attribute, ctypes.c_int(int(device_id)))
        values.append(value.value)
    name = props.raw[:NAME_BYTES].split(b"\0", 1)[0].decode(errors="replace")
    return {"name": name, "compute_capability": "{}.{}".format(*values)}
