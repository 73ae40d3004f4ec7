"""``python -m mspd_edge.cli``: the ``mspd-edge`` command (the bench's worker processes use it)."""
from . import main

main(prog_name="mspd-edge")
