"""Vision Transformer with timm-style state-dict keys: DeiT and ViT with a convolutional stem.

Checked against timm ``timm/models/vision_transformer.py`` (``VisionTransformer``, ``Block``,
``Attention``, ``Mlp``, ``PatchEmbed``; class token, LayerNorm eps 1e-6, qkv bias, GELU MLP,
token pooling) and RobustBench ``model_zoo/architectures/deit.py`` / ``convstem_models.py``:

* ``Tian2022Deeper_DeiT-B``: timm DeiT with ``patch_size=16, embed_dim=768, depth=12,
  num_heads=12``, wrapped by ``normalize_timm_model`` (ImageNet mean/std of timm's DeiT config).
* ``Singh2023Revisiting_ViT-S-ConvStem``: timm ``deit_small_patch16_224`` (384 wide, 12 deep,
  6 heads) whose ``patch_embed.proj`` is RobustBench's ``ConvBlock(48, end_siz=8)``: four
  stride-2 3x3 convolutions (48, 96, 192, 384 channels) each followed by a channels-first
  LayerNorm and GELU, then a 1x1 convolution to the embedding, wrapped by ``normalize_model``
  with the ImageNet mean/std.

Keys are timm's (``cls_token``, ``pos_embed``, ``patch_embed.proj.*``, ``blocks.N.{norm1,
attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}.*``, ``norm.*``, ``head.*``); the normalisation
lives in a non-persistent :class:`Normalize`, as RobustBench's ``normalize.*`` buffers are not
part of the checkpoints. Attention uses ``F.scaled_dot_product_attention`` (timm's fused path).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .common import Normalize

_LN_EPS = 1e-6
_CONV_STEM_STRIDE = 16  # four stride-2 convolutions


class _LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW tensor (RobustBench's channels-first LayerNorm)."""

    def forward(self, x):
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class _ConvStem(nn.Module):
    def __init__(self, in_channels, width, embed_dim):
        super().__init__()
        layers, c_in = [], in_channels
        for c_out in (width, 2 * width, 4 * width, 8 * width):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1),
                       _LayerNorm2d(c_out, eps=_LN_EPS), nn.GELU()]
            c_in = c_out
        layers.append(nn.Conv2d(c_in, embed_dim, 1))
        self.stem = nn.Sequential(*layers)

    def forward(self, x):
        return self.stem(x)


class _PatchEmbed(nn.Module):
    def __init__(self, proj):
        super().__init__()
        self.proj = proj

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class _Attention(nn.Module):
    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class _Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class _Block(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=_LN_EPS)
        self.attn = _Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=_LN_EPS)
        self.mlp = _Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    """ViT/DeiT classifier (defaults: DeiT-B/16 at 224). ``conv_stem_width`` swaps the patchify
    convolution for a ConvStem of that base width (48 for ViT-S-ConvStem; stride 16, so
    ``patch_size`` is then unused)."""

    def __init__(self, num_classes=1000, img_size=224, patch_size=16, embed_dim=768, depth=12,
                 num_heads=12, mlp_ratio=4.0, conv_stem_width=None, mean=None, std=None,
                 num_input_channels=3):
        super().__init__()
        self.normalize = Normalize(mean, std, num_input_channels)
        if conv_stem_width is None:
            stride = patch_size
            proj = nn.Conv2d(num_input_channels, embed_dim, patch_size, stride=patch_size)
        else:
            stride = _CONV_STEM_STRIDE
            proj = _ConvStem(num_input_channels, conv_stem_width, embed_dim)
        if img_size % stride:
            raise ValueError(f"img_size {img_size} is not a multiple of the patch stride {stride}")
        self.patch_embed = _PatchEmbed(proj)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, (img_size // stride) ** 2 + 1, embed_dim))
        self.blocks = nn.Sequential(*[_Block(embed_dim, num_heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=_LN_EPS)
        self.head = nn.Linear(embed_dim, num_classes)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)

    def forward(self, x):
        x = self.patch_embed(self.normalize(x))
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


def vit_convstem(num_classes=1000, img_size=224, embed_dim=384, depth=12, num_heads=6,
                 conv_stem_width=48, **kwargs):
    """ViT with a convolutional stem (defaults: ViT-S-ConvStem of Singh et al. 2023)."""
    return VisionTransformer(num_classes=num_classes, img_size=img_size, embed_dim=embed_dim,
                             depth=depth, num_heads=num_heads, conv_stem_width=conv_stem_width,
                             **kwargs)
