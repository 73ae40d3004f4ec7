"""airbench94's recipe for the label classifier (Jordan 2024, "94% on CIFAR-10 in 3.29 seconds
on a single GPU"; KellerJordan/cifar10-airbench), as one ``mspd-edge train --recipe airbench``.

For a CifarNet with the whitening stem (``whiten=2``, ``bn_eps=1e-12``, ``logit_scale=1/9``):
the stem's weights from the eigenvectors of the training images' 2x2 patch covariance (frozen;
its bias trained for the first ``WHITEN_BIAS_EPOCHS``), Dirac (identity) init of the group
convolutions, BatchNorm without a learned scale, Nesterov SGD in decoupled form (``lr_max`` and
``weight_decay`` per 1,024 images, BN biases at ``BIAS_SCALER`` times the rate), the ``triangle``
schedule, the summed label-smoothed loss, a Lookahead-style EMA from epoch ``EMA_START`` and
alternating flips (each image's mirror every other epoch) with reflect-padded translations.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

BIAS_SCALER = 64.0          # BN biases' learning rate / the other parameters' (not their decay)
WHITEN_BIAS_EPOCHS = 3      # epochs the whitening stem's bias trains before it is frozen
WHITEN_IMAGES = 5000        # training images whose patches set the whitening stem
WHITEN_EPS = 5e-4           # added to the patch covariance's eigenvalues
BN_MOMENTUM = 0.4           # PyTorch convention (airbench: 0.6 = 1 - 0.4)
EMA_START, EMA_EVERY, EMA_DECAY, EMA_POW = 3, 5, 0.95, 3.0
TRANSLATE = 2               # pixels of random translation (reflect padding)


def prepare(model, images):
    """Whitening stem from ``images`` (uint8 [n,C,H,W]), Dirac convs, BN scales frozen."""
    stem = model.stem[0]
    x = model.normalize(images[:WHITEN_IMAGES].float().div(255))
    k = stem.kernel_size[0]
    patches = x.unfold(2, k, 1).unfold(3, k, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, x.shape[1] * k * k)
    eigenvalues, eigenvectors = torch.linalg.eigh(patches.T @ patches / len(patches))
    filters = (eigenvectors.T.flip(0) / torch.sqrt(eigenvalues.flip(0) + WHITEN_EPS)[:, None])
    filters = filters.reshape(-1, x.shape[1], k, k)
    if 2 * len(filters) != stem.out_channels:
        raise ValueError(f"the whitening stem needs {2 * len(filters)} channels, has {stem.out_channels}")
    with torch.no_grad():
        stem.weight.copy_(torch.cat((filters, -filters)))
        stem.bias.zero_()
    stem.weight.requires_grad_(False)
    for module in model.groups.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.dirac_(module.weight.data[:module.in_channels])
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = BN_MOMENTUM
            module.weight.requires_grad_(False)


def optimizer(model, cfg):
    """Nesterov SGD, decoupled: each group's ``scale`` times the schedule's lr is its rate."""
    kilostep = 1024 * (1 + 1 / (1 - cfg.momentum))
    decay = cfg.weight_decay * cfg.batch_size / kilostep
    biases = [p for n, p in model.named_parameters() if ".norm" in n and n.endswith("bias")]
    others = [p for n, p in model.named_parameters() if p.requires_grad and not any(p is b for b in biases)]
    groups = []
    for params, scale in ((biases, BIAS_SCALER / kilostep), (others, 1 / kilostep)):
        groups.append({"params": params, "scale": scale, "weight_decay": decay / (cfg.lr_max * scale)})
    return torch.optim.SGD(groups, lr=0.0, momentum=cfg.momentum, nesterov=True)


def augment(images, flipped, epoch, generator):
    """``images`` float [B,C,H,W]: each one mirrored where ``flipped`` (and all of them again on
    odd epochs), then translated by up to ``TRANSLATE`` pixels (reflect padding)."""
    b, _, h, w = images.shape
    images = torch.where(flipped.view(-1, 1, 1, 1) ^ bool(epoch % 2), images.flip(3), images)
    padded = F.pad(images, (TRANSLATE,) * 4, mode="reflect")
    shifts = torch.randint(0, 2 * TRANSLATE + 1, (2, b), generator=generator)
    rows = (shifts[0][:, None] + torch.arange(h)).view(b, 1, h, 1).expand(-1, padded.shape[1], -1, padded.shape[3])
    out = padded.gather(2, rows)
    cols = (shifts[1][:, None] + torch.arange(w)).view(b, 1, 1, w).expand(-1, out.shape[1], h, -1)
    return out.gather(3, cols)


class Lookahead:
    """airbench's EMA of the weights (and BN statistics): every ``EMA_EVERY`` steps the average
    moves towards the weights and the weights are set to it."""

    def __init__(self, model):
        self.average = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}

    @staticmethod
    def decay(progress):
        """The average's decay at ``progress`` in [0, 1] of the run: it rises to hold the end."""
        return EMA_DECAY ** EMA_EVERY * progress ** EMA_POW

    def update(self, model, decay):
        state = model.state_dict()
        with torch.no_grad():
            for key, average in self.average.items():
                average.lerp_(state[key], 1 - decay)
                state[key].copy_(average)


def run_epoch(model, opt, step_fn, fit, cfg, epoch, gen, device, scaler, *, lr_at, autocast):
    """One epoch of the recipe; ``lr_at(progress)`` is the schedule, ``autocast()`` the CPU context."""
    model.train()
    model.stem[0].bias.requires_grad_(epoch < WHITEN_BIAS_EPOCHS)
    n, steps = len(fit[1]), len(fit[1]) // cfg.batch_size
    flipped = torch.rand(n, generator=torch.Generator().manual_seed(cfg.seed)) < 0.5
    order = torch.randperm(n, generator=gen)
    lookahead = Lookahead(model) if epoch >= EMA_START else None
    total_loss = total_correct = 0
    for i in range(steps):
        idx = order[i * cfg.batch_size:(i + 1) * cfg.batch_size]
        x = augment(fit[0][idx].float().div_(255), flipped[idx], epoch, gen)
        x, y = x.to(device).contiguous(memory_format=torch.channels_last), fit[1][idx].to(device)
        progress = (epoch + i / steps) / cfg.epochs
        for group in opt.param_groups:
            group["lr"] = lr_at(progress) * group["scale"]
        with autocast():
            loss, logits = step_fn(model, opt, x, y, cfg, scaler)
        total_loss += loss * len(y)
        total_correct += (logits.argmax(1) == y).sum().item()
        done = epoch * steps + i + 1
        if lookahead is not None and done % EMA_EVERY == 0:
            lookahead.update(model, Lookahead.decay(done / (steps * cfg.epochs)))
    if lookahead is not None:
        lookahead.update(model, 1.0)    # the epoch ends on the average
    return total_loss / (steps * cfg.batch_size), total_correct / (steps * cfg.batch_size)
