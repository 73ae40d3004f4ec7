"""One optimisation step per recipe: ``step(model, opt, x, y, cfg, scaler) -> (loss, logits)``.

- ``standard``: cross-entropy on the (augmented) clean batch.
- ``fgsm-rs``: FGSM with random start (Wong et al. 2020, "Fast is better than free").
- ``n-fgsm``: N-FGSM (de Jorge et al. 2022): noise 2 eps, step ``alpha``, no projection; the
  recipe for architectures where FGSM-RS overfits catastrophically (seen: ReLU ResNet-18).
- ``fast-bat``: Fast-BAT (Zhang et al. 2022): the linearised lower level gives delta*, and the
  implicit-gradient term (1/lambda) d/dtheta <grad_delta l(z), H_C grad_delta l(delta*)> is
  added with one Hessian-vector product (H_C masks coordinates the projection saturates).
- ``gaussian``: cross-entropy on the batch plus Gaussian noise of std ``noise_sigma`` (Cohen
  et al. 2019): the base classifier of a randomized-smoothing model.
- ``fast-ls-l0``: Fast-LS-l0 (Zhong et al. 2025): a 1-step sparse-PGD attack on ``l0_pixels``
  pixels (random start, ascending KL(p(x') || p(x))), soft labels (``label_smoothing``) and the
  TRADES trade-off loss CE(x) + ``trades_beta`` KL(p(x') || p(x)) that smooth the loss landscape
  one-step sparse training otherwise overfits on.
- ``airbench``: cross-entropy summed over the batch (airbench94's loss; the rest of that recipe,
  optimiser, schedule, EMA and augmentation, is in ``airbench.py``).
All recipes honour ``label_smoothing`` (soft labels); fgsm-rs honours ``trades_beta``
(TRADES-style trade-off loss, the loss smoothing of Zhong et al. 2025).
"""
from contextlib import nullcontext

import torch
import torch.nn.functional as F

from ..attacks import fgsm_rs, n_fgsm, sparse_pgd_step
from .config import RECIPE_NAMES


def _ce(logits, y, cfg):
    return F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)


def _apply(loss, opt, scaler):
    opt.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        opt.step()
    else:
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()


def _autocast(x):
    """fp16 autocast on CUDA; on the CPU the loop's ``cfg.precision`` context stays in force."""
    return torch.autocast("cuda", dtype=torch.float16) if x.device.type == "cuda" else nullcontext()


def standard_step(model, opt, x, y, cfg, scaler):
    with _autocast(x):
        logits = model(x)
        loss = _ce(logits, y, cfg)
    _apply(loss, opt, scaler)
    return loss.item(), logits.detach()


def summed_step(model, opt, x, y, cfg, scaler):
    with _autocast(x):
        logits = model(x)
        loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing, reduction="sum")
    _apply(loss, opt, scaler)
    return loss.item() / len(y), logits.detach()


def _trades_adv(model, x, cfg):
    """FGSM-RS on KL(p(x') || p(x)), the inner maximisation of TRADES."""
    with torch.no_grad():
        p_clean = F.softmax(model(x), 1)
    delta = torch.empty_like(x).uniform_(-cfg.eps, cfg.eps).requires_grad_(True)
    kl = F.kl_div(F.log_softmax(model((x + delta).clamp(0, 1)), 1), p_clean, reduction="sum")
    (grad,) = torch.autograd.grad(kl, delta)
    delta = (delta.detach() + cfg.alpha * grad.sign()).clamp(-cfg.eps, cfg.eps)
    return (x + delta).clamp(0, 1)


def fgsm_rs_step(model, opt, x, y, cfg, scaler):
    with _autocast(x):
        if cfg.trades_beta > 0:
            adv = _trades_adv(model, x, cfg)
            logits_clean = model(x)
            logits = model(adv)
            kl = F.kl_div(F.log_softmax(logits, 1), F.softmax(logits_clean, 1), reduction="batchmean")
            loss = _ce(logits_clean, y, cfg) + cfg.trades_beta * kl
        else:
            logits = model(fgsm_rs(model, x, y, cfg.eps, cfg.alpha))
            loss = _ce(logits, y, cfg)
    _apply(loss, opt, scaler)
    return loss.item(), logits.detach()


def n_fgsm_step(model, opt, x, y, cfg, scaler):
    with _autocast(x):
        logits = model(n_fgsm(model, x, y, cfg.eps, cfg.alpha))
        loss = _ce(logits, y, cfg)
    _apply(loss, opt, scaler)
    return loss.item(), logits.detach()


def fast_bat_step(model, opt, x, y, cfg, scaler):
    step = 1.0 / cfg.bat_lambda
    with _autocast(x):
        z = fgsm_rs(model, x, y, cfg.eps, cfg.alpha) - x          # linearisation point
        z = z.detach().requires_grad_(True)
        (g_z,) = torch.autograd.grad(_ce(model(x + z), y, cfg), z, create_graph=True)
        delta = (z + step * g_z.sign()).clamp(-cfg.eps, cfg.eps)
        delta = ((x + delta).clamp(0, 1) - x).detach().requires_grad_(True)
        logits = model(x + delta)
        loss = _ce(logits, y, cfg)
        (g_star,) = torch.autograd.grad(loss, delta, retain_graph=True)
        active = (delta.abs() < cfg.eps).float()
        implicit = step * (g_z * (active * g_star).detach()).sum()
    _apply(loss + implicit, opt, scaler)
    return loss.item(), logits.detach()


def gaussian_step(model, opt, x, y, cfg, scaler):
    if cfg.noise_sigma <= 0:
        raise ValueError("the gaussian recipe needs noise_sigma > 0")
    return standard_step(model, opt, x + cfg.noise_sigma * torch.randn_like(x), y, cfg, scaler)


def _kl(logits, target_probs, reduction):
    return F.kl_div(F.log_softmax(logits, 1), target_probs, reduction=reduction)


def fast_ls_l0_step(model, opt, x, y, cfg, scaler):
    with _autocast(x):
        with torch.no_grad():
            p_clean = F.softmax(model(x), 1)
        adv = sparse_pgd_step(model, x, lambda logits: _kl(logits, p_clean, "none").sum(1), cfg.l0_pixels)
        logits_clean, logits = model(x), model(adv)
        loss = _ce(logits_clean, y, cfg) + cfg.trades_beta * _kl(logits, F.softmax(logits_clean, 1), "batchmean")
    _apply(loss, opt, scaler)
    return loss.item(), logits.detach()


RECIPES = dict(zip(RECIPE_NAMES, (standard_step, fgsm_rs_step, n_fgsm_step, fast_bat_step, gaussian_step,
                                  fast_ls_l0_step, summed_step)))
