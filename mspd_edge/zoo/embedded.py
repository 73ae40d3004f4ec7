"""The embedded default models: how each was trained (the training issue's recipes).

`scripts/train_embedded.py` trains them from these specs; the weights and manifests live in
``mspd_edge/weights``.
"""
CIFAR10 = {"dataset": "cifar10", "input_size": [3, 32, 32], "eps": 8 / 255}
CIFAR10_NORM = {"mean": [0.4914, 0.4822, 0.4465], "std": [0.2471, 0.2435, 0.2616]}
# N-FGSM, step eps: FGSM-RS (step 1.25 eps) overfit catastrophically on the ReLU ResNet-18 target
# at epoch 5 of 6 (held-out PGD-10 0.18 -> 0.00), see README "Embedded models".
ROBUST_TARGET = {"recipe": "n-fgsm", "epochs": 6, "lr_max": 0.2, "schedule": "cyclic", "alpha": 8 / 255}

# Randomized smoothing's base classifiers (Cohen et al. 2019): cross-entropy on images plus
# Gaussian noise of std sigma (manifest "smoothing_sigma"); the non-robust target's schedule.
SMOOTHED = {"recipe": "gaussian", "epochs": 10, "batch_size": 256, "lr_max": 0.4, "schedule": "onecycle"}
# Fast-LS-l0 (Zhong et al. 2025): 1-step sparse-PGD on 120 pixels, soft labels, TRADES beta 3
# (CityU-MLO/sPGD's default trades_beta); the robust targets' cyclic schedule.
L0_TARGET = {"recipe": "fast-ls-l0", "epochs": 8, "lr_max": 0.2, "schedule": "cyclic", "l0_pixels": 120,
             "trades_beta": 3.0, "label_smoothing": 0.2}
BACKBONE = {"base_width": 16, "activation": "swish", **CIFAR10_NORM}   # DM PreActResNet-18, Swish
RESNET18 = {"depth": 18, "base_width": 16, **CIFAR10_NORM}

EMBEDDED = {
    # The default backbone: chosen by the protection it gives (docs/models.md, "Recipes compared"
    # and "Schedule"): FGSM-RS for 6 epochs gives more than 12 (the first default) or N-FGSM for 30
    # (a stronger model by its own accuracy); width 16: wider costs 1.9x-2.6x per protected image
    # on this class of CPU; bf16 training.
    "cifar10-backbone": dict(
        role="backbone", arch="dm_preact_resnet", arch_kwargs=BACKBONE,
        train={"recipe": "fgsm-rs", "epochs": 6, "lr_max": 0.2, "schedule": "cyclic",
               "precision": "bf16", "seed": 0},
        pair="cifar10-classifier"),
    # The label classifier of the default pair (88%).
    "cifar10-classifier": dict(
        role="classifier", arch="cifarnet",
        arch_kwargs={"widths": [32, 128, 128], "stem": 24, "flip_tta": True, **CIFAR10_NORM},
        train={"recipe": "standard", "epochs": 20, "batch_size": 256, "lr_max": 0.4,
               "schedule": "onecycle", "label_smoothing": 0.2, "seed": 0}),
    # The first default backbone (FGSM-RS, 12 epochs): same architecture, less protection.
    "cifar10-backbone-v1": dict(
        role="backbone", arch="dm_preact_resnet", arch_kwargs=BACKBONE,
        train={"recipe": "fgsm-rs", "epochs": 12, "lr_max": 0.2, "schedule": "cyclic", "seed": 0},
        pair="cifar10-classifier"),
    # A 4x larger label classifier (airbench94's widths, 90.7%), not the default's: with either
    # backbone it adds no measurable protection and costs 2-4% more per protected image
    # (docs/models.md, "The label classifier").
    "cifar10-classifier-large": dict(
        role="classifier", arch="cifarnet",
        arch_kwargs={"widths": [64, 256, 256], "stem": 48, "flip_tta": True, **CIFAR10_NORM},
        train={"recipe": "standard", "epochs": 40, "batch_size": 256, "lr_max": 0.4,
               "schedule": "onecycle", "label_smoothing": 0.2, "precision": "bf16", "seed": 0}),
    # airbench95's network and airbench94's recipe (mspd_edge/train/airbench.py), 25 epochs
    # (15 gave 91.8%: docs/models.md, "The label classifier").
    "cifar10-classifier-airbench": dict(
        role="classifier", arch="cifarnet",
        arch_kwargs={"widths": [128, 384, 384], "stem": 24, "whiten": 2, "bn_eps": 1e-12,
                     "logit_scale": 1 / 9, "flip_tta": True, "translate_tta": True, **CIFAR10_NORM},
        train={"recipe": "airbench", "epochs": 25, "batch_size": 1024, "lr_max": 10.0,
               "momentum": 0.85, "weight_decay": 0.0153, "schedule": "triangle",
               "label_smoothing": 0.2, "precision": "bf16", "seed": 0}),
    # The gray-box reverser of the evaluation: the backbone's architecture and recipe, another
    # seed (8 epochs: trained for the first default; the new default kept its architecture).
    "cifar10-backbone-graybox": dict(
        role="graybox", arch="dm_preact_resnet", arch_kwargs=BACKBONE,
        train={"recipe": "fgsm-rs", "epochs": 8, "lr_max": 0.2, "schedule": "cyclic", "seed": 5}),
    # Unseen evaluation targets: architectures other than the backbone's, never used to protect.
    "cifar10-target-resnet18": dict(
        role="target", arch="resnet", arch_kwargs={"depth": 18, "base_width": 16, **CIFAR10_NORM},
        train={**ROBUST_TARGET, "seed": 1}),
    "cifar10-target-wrn": dict(
        role="target", arch="dm_wide_resnet",
        arch_kwargs={"depth": 10, "width": 2, "activation": "relu", **CIFAR10_NORM},
        train={**ROBUST_TARGET, "epochs": 10, "seed": 2}),
    "cifar10-target-preact": dict(
        role="target", arch="preact_resnet", arch_kwargs={"depth": 18, "base_width": 16, **CIFAR10_NORM},
        train={**ROBUST_TARGET, "seed": 3}),
    "cifar10-target-nonrobust": dict(
        role="target", arch="resnet", arch_kwargs={"depth": 18, "base_width": 16, **CIFAR10_NORM},
        train={"recipe": "standard", "epochs": 8, "batch_size": 256, "lr_max": 0.4,
               "schedule": "onecycle", "label_smoothing": 0.1, "seed": 4}),
    # Smoothed targets (`evaluate --certify`): role "smoothed", so plain runs do not attack them.
    "cifar10-smoothed-025": dict(
        role="smoothed", arch="resnet", arch_kwargs=RESNET18, smoothing_sigma=0.25,
        train={**SMOOTHED, "noise_sigma": 0.25, "seed": 6}),
    "cifar10-smoothed-050": dict(
        role="smoothed", arch="resnet", arch_kwargs=RESNET18, smoothing_sigma=0.50,
        train={**SMOOTHED, "noise_sigma": 0.50, "seed": 7}),
    # The L0-robust unseen target of the sparse-l0 rows.
    "cifar10-target-l0": dict(
        role="target", arch="resnet", arch_kwargs=RESNET18, train={**L0_TARGET, "seed": 8}),
}
