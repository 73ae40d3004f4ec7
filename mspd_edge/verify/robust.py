"""The defence's effect at the model input: robust accuracy of unseen targets under PGD-10.

One image is a small sample: accuracy is a fraction over a set; per image it says, for each
target, whether it classifies the image right and PGD-10 (L-inf, the backbone's eps, steps of
eps/4, random start, fixed seed) fails to change that. The label is the protection's own (the
classifier's prediction on the original, or the given label in label mode ``gt``).
"""
import numpy as np

# The shipped robust targets (mspd_edge/weights), by model input side: never used to protect.
ROBUST_TARGETS = {32: ("cifar10-target-resnet18", "cifar10-target-preact", "cifar10-target-wrn")}
PGD_STEPS = 10
ATTACK_SEED = 0


def default_targets(input_size):
    """The shipped robust targets for models of ``input_size`` (C, h, w); empty when none."""
    return ROBUST_TARGETS.get(input_size[1], ()) if input_size[1] == input_size[2] else ()


def load_targets(names, input_size):
    """``{name: torch model}`` (zoo names or checkpoint files); raises ValueError saying why not."""
    from ..zoo import load_model

    targets = {}
    for name in names:
        try:
            model = load_model(name)
        except (ValueError, KeyError, OSError, RuntimeError) as exc:
            raise ValueError(f"target {name}: {exc}") from None
        if tuple(model.info.input_size) != tuple(input_size):
            raise ValueError(f"target {name} takes {tuple(model.info.input_size)} images, the backbone "
                             f"{tuple(input_size)}")
        targets[name] = model
    return targets


def robust_flags(targets, x, labels, eps, batch_size=256):
    """``{target: bool [n]}``: correct and robust to PGD-10 at ``eps`` on float32 ``x`` [n,C,h,w]."""
    import torch

    from ..evaluate.attacks import attack_spec, robust_flags as flags_of

    spec = attack_spec("pgd-linf", eps=eps, steps=PGD_STEPS)
    images, y = torch.from_numpy(np.ascontiguousarray(np.stack(x), np.float32)), torch.as_tensor(labels, dtype=torch.int64)
    return {name: flags_of(model, images, y, spec, seed=ATTACK_SEED, batch_size=batch_size).numpy()
            for name, model in targets.items()}
