"""Assemble an evaluation ``Plan`` from names: data, targets, attacks, gray-box backbone."""
import json

import numpy as np
import torch

from ..backends import BackendError, BackendOptions, build_backend
from ..imaging import to_model_input
from ..zoo import load_model
from ..zoo.locate import WEIGHTS_DIR
from .attacks import attack_spec
from .certified import smoothing_sigmas
from .conditions import CONDITIONS, check_conditions
from .datasets import load_labelled
from .run import Plan

TARGET_ROLE = "target"
GRAYBOX = "cifar10-backbone-graybox"


class PlanError(ValueError):
    """A request the evaluation cannot honour; the message says why."""


def _load(name, role):
    try:
        return load_model(name)
    except (ValueError, KeyError, OSError, RuntimeError) as exc:
        raise PlanError(f"{role} {name}: {exc}") from None


def default_targets():
    """The shipped evaluation targets: every manifest in ``mspd_edge/weights`` with role "target"."""
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.json")
                  if json.loads(p.read_text()).get("role") == TARGET_ROLE)


def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(sa[k].shape == sb[k].shape and torch.equal(sa[k], sb[k]) for k in sa)


def load_targets(names, backbone, allow_backbone=False):
    """``{name: model}``; the backbone (by name or by identical weights) only if ``allow_backbone``."""
    targets = {}
    for name in names:
        model = _load(name, "target")
        if not allow_backbone and (name == backbone.info.name or _same_weights(model, backbone)):
            raise PlanError(f"target {name} is the defence's backbone: a white-box reference, not an "
                            "unseen target (pass --backbone-as-target to measure it anyway)")
        if tuple(model.info.input_size) != tuple(backbone.info.input_size):
            raise PlanError(f"target {name} takes {model.info.input_size} images, the backbone "
                            f"{backbone.info.input_size}")
        targets[name] = model.to(next(backbone.parameters()).device)
    return targets


def model_size_images(images, input_size):
    """uint8 ``[n, h, w, C]`` at the model's input size (the resize rule of protection)."""
    out = [to_model_input(image, input_size)[0].transpose(1, 2, 0) for image in images]
    return np.rint(np.stack(out) * 255).astype(np.uint8)


def _defence(backend, settings, backbone, classifier):
    return {"backbone": backbone.info.name, "classifier": None if classifier is None else classifier.info.name,
            "eps": settings.eps, "n_samples": settings.n_samples, "lr": settings.lr,
            "epochs": settings.epochs, "label_mode": settings.label_mode, "backend": backend.name,
            "precision": backend.precision}


def graybox_backend(name, options, backbone, need_classifier):
    """The gray-box reverser: the fp32 torch reference on backbone ``name``, with the classifier
    and device of the defence's ``options`` (built through the registry)."""
    try:
        models = build_backend("torch", options.but(backbone=name, model_dir=None, provider=None,
                                                    precision="fp32"), need_classifier=need_classifier)
    except BackendError as exc:
        raise PlanError(f"gray-box backbone {name}: {exc}") from None
    if tuple(models.backbone.input_size) != tuple(backbone.info.input_size):
        raise PlanError(f"gray-box backbone {name} takes {models.backbone.input_size} images, the "
                        f"backbone {backbone.info.input_size}: pass --graybox, or leave reverted-gray out")
    return models.backend


def build_plan(data, n_images, backend, settings, backbone, classifier, target_names, attacks,
               conditions, graybox=None, allow_backbone_target=False, describe=None, certify=None,
               backend_options=BackendOptions(), **run_options):
    """A ``Plan``: ``backend`` protects (any pipeline backend, settings resolved); ``backbone`` and
    ``classifier`` are the torch models behind it (gradient cosine, gray-box labels);
    ``attacks``: {name: (eps or None, steps or None)}; ``describe``: extra config entries;
    ``certify``: a ``CertifySpec`` to certify the targets with a ``smoothing_sigma`` (at least one);
    ``backend_options``: the defence's (with its classifier named), for the gray-box reverser.
    """
    dataset = load_labelled(data, limit=n_images, classes=backbone.info.classes)
    conditions = check_conditions(conditions)
    needs_graybox = any(CONDITIONS[c].operation == "revert" and CONDITIONS[c].reverser == "graybox"
                        for c in conditions)
    if needs_graybox and graybox is None:
        raise PlanError("the gray-box reversion needs --graybox (a backbone of the same architecture, another seed)")
    gray_backend = (graybox_backend(graybox, backend_options, backbone, classifier is not None)
                    if needs_graybox else None)
    specs = {name: attack_spec(name, eps, steps, model_eps=settings.eps, input_size=backbone.info.input_size)
             for name, (eps, steps) in attacks.items()}
    config = {"data": str(data), "images": len(dataset.labels), "seed": settings.seed,
              "defence": _defence(backend, settings, backbone, classifier),
              "graybox": graybox,
              "targets": list(target_names), "attacks": {n: s.describe() for n, s in specs.items()},
              "conditions": list(conditions), **(describe or {})}
    targets = load_targets(target_names, backbone, allow_backbone_target)
    if certify is not None:
        if not smoothing_sigmas(targets):
            raise PlanError("--certify needs a smoothed target (a manifest with smoothing_sigma), e.g. "
                            "cifar10-smoothed-025; none of " + ", ".join(target_names) + " is one")
        config["certify"] = certify.describe()
    return Plan(config=config, images=model_size_images(dataset.images, backbone.info.input_size),
                labels=np.asarray(dataset.labels, np.int64), backends={"defence": backend, "graybox": gray_backend},
                settings=settings, targets=targets, attacks=specs, conditions=conditions, backbone=backbone,
                certify=certify, **run_options)
