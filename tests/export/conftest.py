"""Export tests need onnx, onnxruntime and torch."""
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("torch")
