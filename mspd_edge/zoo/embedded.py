"""The embedded default models: how each was trained (the training issue's recipes).

`scripts/train_embedded.py` trains them from these specs; the weights and manifests live in
``mspd_edge/weights``.
"""
CIFAR10 = {"dataset": "cifar10", "input_size": [3, 32, 32], "eps": 8 / 255}
CIFAR10_NORM = {"mean": [0.4914, 0.4822, 0.4465], "std": [0.2471, 0.2435, 0.2616]}

EMBEDDED = {
    "cifar10-backbone": dict(
        role="backbone", arch="dm_preact_resnet",
        arch_kwargs={"base_width": 16, "activation": "swish", **CIFAR10_NORM},
        train={"recipe": "fgsm-rs", "epochs": 12, "lr_max": 0.2, "schedule": "cyclic", "seed": 0},
        pair="cifar10-classifier"),
    "cifar10-classifier": dict(
        role="classifier", arch="cifarnet",
        arch_kwargs={"widths": [32, 128, 128], "stem": 24, "flip_tta": True, **CIFAR10_NORM},
        train={"recipe": "standard", "epochs": 10, "batch_size": 256, "lr_max": 0.4,
               "schedule": "onecycle", "label_smoothing": 0.2, "seed": 0}),
}
