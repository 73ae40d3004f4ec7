"""``python -m mspd_edge.camera ...``: the ``mspd-edge camera`` command on its own."""
from .command import camera_command

if __name__ == "__main__":
    camera_command(prog_name="mspd-edge camera")
