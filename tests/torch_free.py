"""Run Python code as on a device without torch (import as ``torch_free``)."""
import os
import subprocess
import sys
from pathlib import Path

from limits import COMMAND_SECONDS

REPO = Path(__file__).resolve().parents[1]

# Runs Python with an import hook that makes ``import torch`` fail, then reports whether torch
# got imported anyway. Used by the torch-free tests.
BLOCK_TORCH = """
import importlib.abc, sys
class _NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
        return None
sys.meta_path.insert(0, _NoTorch())
"""


def run_without_torch(code, env=None, timeout=COMMAND_SECONDS):
    """Run ``code`` in a fresh Python where importing torch raises ImportError."""
    environment = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-c", BLOCK_TORCH + code], capture_output=True, text=True,
                          cwd=REPO, env=environment, timeout=timeout)
