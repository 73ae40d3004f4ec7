"""Torch never spin-waits against other work: mspd_edge sets a passive OpenMP wait policy before
torch loads, keeps a policy the user set, and warns when torch came first without one."""
import os
import subprocess
import sys

import pytest
from limits import COMMAND_SECONDS

PROBE = ("import os, warnings; warnings.simplefilter('error');\n"
         "{first}\n"
         "from mspd_edge.backends import BackendOptions, build_backend\n"
         "try:\n"
         "    build_backend('torch', BackendOptions(precision='fp32', threads=1), need_classifier=False)\n"
         "except RuntimeWarning as w:\n"
         "    print('warned:', w)\n"
         "print('policy:', os.environ.get('OMP_WAIT_POLICY'))\n")


def run(first, **env):
    environment = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    result = subprocess.run([sys.executable, "-c", PROBE.format(first=first)], capture_output=True,
                            text=True, env={**environment, **env}, timeout=COMMAND_SECONDS)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("first", ["import mspd_edge", "import mspd_edge.cli", "import mspd_edge.distributed"])
def test_mspd_edge_sets_passive_before_torch(first):
    out = run(first)
    assert "policy: PASSIVE" in out and "warned" not in out


def test_a_policy_the_user_set_is_kept():
    out = run("import mspd_edge", OMP_WAIT_POLICY="ACTIVE")
    assert "policy: ACTIVE" in out and "warned" not in out


def test_torch_imported_first_without_a_policy_warns():
    out = run("import torch")
    assert "warned: torch was imported before mspd_edge" in out and "OMP_WAIT_POLICY=PASSIVE" in out
