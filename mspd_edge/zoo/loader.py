"""Load zoo models by name or from a checkpoint file: ``load_model`` and ``list_models``.

Names ``load_model`` accepts:

* the embedded defaults of ``embedded.py`` and any other manifest in ``mspd_edge/weights``:
  ``mspd_edge/weights/<name>.json`` (name, arch, arch_kwargs, dataset, input_size, eps, classes, ...)
  plus the fp16 state dict ``<name>.pt`` (``checkpoint=`` overrides the weights file, e.g. with
  ``runs/<name>/best.pt`` while a model is not shipped yet);
* the RobustBench ids of ``robustbench_ids.ROBUSTBENCH``; the checkpoint is ``checkpoint=PATH``,
  else the one :func:`.locate.robustbench_checkpoint` finds in RobustBench's own layout
  (``mspd-edge models pull ID`` puts it there).

A path may also be given instead of a name: a manifest ``.json`` (weights next to it), or a
checkpoint whose file stem is a known name, or whose keys and shapes fit exactly one known model.
Otherwise pass the name and ``checkpoint=PATH``.

Checkpoints may be wrapped (``state_dict`` / ``model_state_dict`` / ``model`` entries) and
prefixed (``module.``, ``model.``); normalisation buffers (``mean``/``std``, ``mu``/``sigma``,
``normalize.mean``/``normalize.std``) are read into the model's ``Normalize`` when present.
"""
import json
import pickle
from pathlib import Path

import torch

from ..util import first_line
from . import locate
from .checkpoint_file import format_problem
from .embedded import CIFAR10, EMBEDDED
from .info import ModelInfo, dataset_classes
from .registry import build
from .robustbench_ids import ROBUSTBENCH

_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")
_WRAPPER_PREFIXES = ("module.", "model.")
_NORM_KEYS = {"mean": "mean", "mu": "mean", "normalize.mean": "mean",
              "std": "std", "sigma": "std", "normalize.std": "std"}
_SHOWN_KEYS = 8
_INFO_OVERRIDES = ("input_size", "eps", "classes", "pair", "smoothing_sigma")  # manifest fields that override the dataset's


def save_weights(state, path):
    """Write ``state`` (a state dict) as the shipped weights format: floating tensors in fp16."""
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, path)


def list_models():
    """Names ``load_model`` accepts: embedded defaults (shipped or not), then RobustBench ids."""
    return list(_embedded_specs()) + list(ROBUSTBENCH)


def load_model(name_or_path, checkpoint=None, weights_only=True):
    """Build and load a zoo model; returns it in eval mode, float32, parameters frozen.

    ``name_or_path`` is a name from ``list_models()`` or a file (see the module docstring);
    ``checkpoint`` overrides where the weights come from. ``weights_only=False`` lets
    ``torch.load`` unpickle arbitrary objects: only for checkpoints you trust.
    The model carries its :class:`ModelInfo` as ``model.info``.
    """
    name, path, state = str(name_or_path), Path(name_or_path), None
    embedded = _embedded_specs()
    if name in embedded:
        manifest = locate.WEIGHTS_DIR / f"{name}.json"
        spec, weights = embedded[name], checkpoint or manifest.with_suffix(".pt")
        if checkpoint is None and not manifest.is_file():
            raise FileNotFoundError(
                f"embedded model {name!r} is not shipped yet ({manifest} is missing): train it "
                f"with scripts/train_embedded.py {name}, or pass checkpoint=PATH")
        source = f"embedded {weights}"
    elif name in ROBUSTBENCH:
        spec = ROBUSTBENCH[name]
        weights = checkpoint or locate.robustbench_checkpoint(name)
        source = f"robustbench {spec['dataset']}/{spec['threat_model']} {weights}"
    elif path.is_file() and path.suffix == ".json":
        spec = json.loads(path.read_text())
        name, weights = spec.get("name", path.stem), checkpoint or path.with_suffix(".pt")
        source = f"manifest {path} {weights}"
    elif path.is_file():
        if checkpoint is not None:
            raise ValueError(f"got both a checkpoint path {name!r} and checkpoint={checkpoint!r}")
        weights = path
        state, norm = _read_checkpoint(weights, weights_only)
        name = _infer_name(weights, state)
        spec, source = _known_specs()[name], f"checkpoint {weights}"
    else:
        raise ValueError(f"unknown model {name!r}: not a file, nor one of {list_models()}")
    if state is None:
        state, norm = _read_checkpoint(Path(weights), weights_only)
    return _assemble(name, spec, state, norm, weights, source)


def check_checkpoint(name, path, weights_only=True):
    """Why checkpoint ``path`` does not load into zoo model ``name``, or None when it does.

    The checks of :func:`load_model` (a readable checkpoint holding a state dict whose keys and
    shapes fit the architecture), on a model built on the meta device: no weights are copied.
    """
    spec = _known_specs()[name]
    try:
        state, _ = _read_checkpoint(Path(path), weights_only)
    except ValueError as exc:
        return str(exc)
    problems = _mismatch(_build(spec, "meta"), state)
    return f"it does not fit {name} ({spec['arch']}): {'; '.join(problems)}" if problems else None


def _embedded_specs():
    specs = {name: {"arch": s["arch"], "arch_kwargs": s["arch_kwargs"], "pair": s.get("pair"), **CIFAR10,
                    **{k: s[k] for k in ("smoothing_sigma",) if k in s}}
             for name, s in EMBEDDED.items()}
    for manifest in locate.shipped_manifests():
        specs[manifest.stem] = json.loads(manifest.read_text())
    return specs


def _known_specs():
    return {**_embedded_specs(), **ROBUSTBENCH}


def _build(spec, device="cpu"):
    classes = spec.get("classes") or dataset_classes(spec["dataset"])
    with torch.device(device):
        return build(spec["arch"], **{"num_classes": len(classes), **spec["arch_kwargs"]})


def _assemble(name, spec, state, norm, weights, source):
    model = _build(spec)
    _load_into(model, state, norm, f"checkpoint {weights} does not fit {name} ({spec['arch']})")
    model.float().eval().requires_grad_(False)
    model.info = ModelInfo.for_dataset(name, spec["arch"], spec["arch_kwargs"], spec["dataset"],
                                       source, **{k: spec[k] for k in _INFO_OVERRIDES if k in spec})
    return model


def _read_checkpoint(path, weights_only):
    """The state dict in ``path``, unwrapped and unprefixed, and its normalisation tensors.

    A file that is no checkpoint at all is named with what it is (:func:`format_problem`) before
    torch reads it.
    """
    problem = format_problem(path)
    if problem is not None:
        raise ValueError(f"{path} is not a torch checkpoint: {problem}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=weights_only)
    except pickle.UnpicklingError as err:
        raise ValueError(f"checkpoint {path} holds more than tensors; if you trust it, load it "
                         f"with weights_only=False ({first_line(err)})") from None
    except (RuntimeError, EOFError, KeyError) as err:
        raise ValueError(f"{path} cannot be read as a torch checkpoint ({first_line(err)}): damaged "
                         "or truncated?") from None
    while isinstance(obj, dict) and not all(torch.is_tensor(v) for v in obj.values()):
        key = next((k for k in _WRAPPER_KEYS if isinstance(obj.get(k), dict)), None)
        if key is None:
            raise ValueError(f"checkpoint {path} holds no state dict; top-level keys {_few(obj)}")
        obj = obj[key]
    if not isinstance(obj, dict) or not obj:
        raise ValueError(f"checkpoint {path} holds no state dict (found {type(obj).__name__})")
    state, norm = dict(obj), {}
    while True:
        for key in [k for k in state if k in _NORM_KEYS]:
            norm[_NORM_KEYS[key]] = state.pop(key)
        prefix = next((p for p in _WRAPPER_PREFIXES
                       if state and all(k.startswith(p) for k in state)), None)
        if prefix is None:
            return state, norm
        state = {k[len(prefix):]: v for k, v in state.items()}


def _mismatch(model, state):
    """What keeps ``state`` from loading into ``model``: missing, unexpected, reshaped keys."""
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    reshaped = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
                for k, v in own.items() if k in state and state[k].shape != v.shape]
    return [f"{label} {_few(keys)}" for label, keys in
            (("missing keys", missing), ("unexpected keys", unexpected),
             ("wrong shapes (checkpoint vs model)", reshaped)) if keys]


def _load_into(model, state, norm, what):
    problems = _mismatch(model, state)
    if problems:
        raise ValueError(f"{what}: {'; '.join(problems)}")
    model.load_state_dict(state, strict=False)
    for attr, value in norm.items():
        buffer = getattr(model.normalize, attr)
        if value.numel() != buffer.numel():
            raise ValueError(f"{what}: normalisation {attr} has {value.numel()} values, "
                             f"the model {buffer.numel()}")
        buffer.copy_(value.reshape(buffer.shape))


def _infer_name(path, state):
    known = _known_specs()
    if path.stem in known:
        return path.stem
    shapes = _shapes(state)
    fits = [name for name, spec in known.items()
            if _shapes(_build(spec, "meta").state_dict()) == shapes]
    if len(fits) == 1:
        return fits[0]
    reason = f"it fits {fits}" if fits else "it fits no known model"
    raise ValueError(f"cannot tell the architecture of checkpoint {path} ({reason}); "
                     f"call load_model(NAME, checkpoint={str(path)!r}) with NAME from list_models()")


def _shapes(state):
    return {k: tuple(v.shape) for k, v in state.items() if not k.endswith("num_batches_tracked")}


def _few(keys):
    keys = list(keys)
    more = f" (+{len(keys) - _SHOWN_KEYS} more)" if len(keys) > _SHOWN_KEYS else ""
    return f"{keys[:_SHOWN_KEYS]}{more}"
