"""ONNX export of robust backbones with their input-gradient graphs (``mspd_edge.export``).

Lives in the top-level ``export/`` folder; installed as the ``mspd_edge.export`` subpackage.
The export issue fills it: backbone, backbone_grad, mcgs_step and classifier graphs.
"""
