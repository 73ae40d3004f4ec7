"""Standard CIFAR augmentation on uint8 batches: random crop with 4-pixel padding, h-flip."""
import torch
import torch.nn.functional as F


def random_crop_flip(images, generator, pad=4):
    """``images`` float [B,C,H,W]; zero-pad by ``pad``, crop back at a random offset, flip half."""
    b, _, h, w = images.shape
    padded = F.pad(images, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None]).view(b, 1, h, 1).expand(b, images.shape[1], h, w + 2 * pad)
    out = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(w)[None]).view(b, 1, 1, w).expand(b, images.shape[1], h, w)
    out = out.gather(3, cols)
    flip = torch.rand(b, generator=generator) < 0.5
    out[flip] = out[flip].flip(3)
    return out
