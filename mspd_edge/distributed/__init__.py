"""``protect`` on a Ray cluster (Ray Data): from a laptop to a cluster, local folders or object storage.

:func:`protect_dataset` runs the same protection as :func:`mspd_edge.protect.protect_files`
(same outputs, byte for byte) as a streaming Dataset: decode tasks, a pool of stateful
:class:`~mspd_edge.distributed.actors.Protector` actors that build the backend once, and
write tasks, with a JSON-lines manifest of one row per input. Needs ``mspd-edge[distributed]``.
Layout: :mod:`~mspd_edge.distributed.storage` (local and object-storage locations, atomic
writes), :mod:`~mspd_edge.distributed.stages` (decode and write), :mod:`~mspd_edge.distributed.actors`,
:mod:`~mspd_edge.distributed.manifest`, :mod:`~mspd_edge.distributed.ray_job` (the Dataset).
Importing this package does not import Ray; :func:`protect_dataset` does.
"""


def protect_dataset(*args, **kwargs):
    """:func:`mspd_edge.distributed.ray_job.protect_dataset` (imports Ray)."""
    from .ray_job import protect_dataset as run

    return run(*args, **kwargs)
