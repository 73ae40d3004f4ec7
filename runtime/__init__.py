"""The lean runtime (``mspd_edge.runtime``): runs the cascade without torch.

Lives in the top-level ``runtime/`` folder; installed as the ``mspd_edge.runtime`` subpackage.
It may import only numpy, onnxruntime, cv2 (and TensorRT/CUDA lazily), never torch.
"""
