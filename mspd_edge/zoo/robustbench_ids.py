"""The RobustBench models the zoo rebuilds without RobustBench: id -> how to build and find it.

Constructor arguments are from RobustBench ``robustbench/model_zoo/cifar10.py`` and
``imagenet.py``; ``threat_model`` is the folder RobustBench stores the checkpoint under
(``models/<dataset>/<threat_model>/<id>.pt``); ``role`` is what mspd-edge uses the model for (the
paper's pairs: MCGS.md "Paper settings"). Where each checkpoint is downloaded from is
:mod:`.pretrained`. Torch-free. Checked against RobustBench at commit 78fcc9e (the
Bartoldson2024 entry: ``DMWideResNet(depth=94, width=16, activation_fn=nn.SiLU,
mean=CIFAR10_MEAN, std=CIFAR10_STD)``).
"""
from .info import AUGMIX_MEAN, AUGMIX_STD, CIFAR10_MEAN, CIFAR10_STD, IMAGENET_MEAN, IMAGENET_STD

_CIFAR10_NORM = {"mean": list(CIFAR10_MEAN), "std": list(CIFAR10_STD)}
_IMAGENET_NORM = {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}

ROBUSTBENCH = {
    "Gowal2021Improving_R18_ddpm_100m": dict(
        role="backbone", arch="dm_preact_resnet", dataset="cifar10", threat_model="Linf",
        arch_kwargs={"depth": 18, "base_width": 64, "activation": "swish", **_CIFAR10_NORM}),
    "Bartoldson2024Adversarial_WRN-94-16": dict(
        role="target", arch="dm_wide_resnet", dataset="cifar10", threat_model="Linf",
        arch_kwargs={"depth": 94, "width": 16, "activation": "swish", **_CIFAR10_NORM}),
    "Wong2020Fast": dict(
        role="target", arch="preact_resnet", dataset="cifar10", threat_model="Linf",
        arch_kwargs={"depth": 18, "base_width": 64, **_CIFAR10_NORM}),
    "Addepalli2022Efficient_RN18": dict(
        role="target", arch="resnet", dataset="cifar10", threat_model="Linf",
        arch_kwargs={"depth": 18, "base_width": 64}),
    "Hendrycks2020AugMix_ResNeXt": dict(
        role="classifier", arch="resnext", dataset="cifar10", threat_model="corruptions",
        arch_kwargs={"depth": 29, "cardinality": 4, "base_width": 32, "stem_width": 64,
                     "mean": list(AUGMIX_MEAN), "std": list(AUGMIX_STD)}),
    "Singh2023Revisiting_ViT-S-ConvStem": dict(
        role="backbone", arch="vit_convstem", dataset="imagenet", threat_model="Linf",
        arch_kwargs={"embed_dim": 384, "depth": 12, "num_heads": 6, "conv_stem_width": 48,
                     **_IMAGENET_NORM}),
    "Tian2022Deeper_DeiT-B": dict(
        role="classifier", arch="deit", dataset="imagenet", threat_model="corruptions",
        arch_kwargs={"patch_size": 16, "embed_dim": 768, "depth": 12, "num_heads": 12,
                     **_IMAGENET_NORM}),
}
