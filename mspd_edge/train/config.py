"""What one training run depends on (torch-free, so the CLI can describe it without torch)."""
from dataclasses import dataclass, field

RECIPE_NAMES = ("standard", "fgsm-rs", "n-fgsm", "fast-bat", "gaussian", "fast-ls-l0", "airbench")
PRECISIONS = ("fp32", "bf16")     # of the CPU training passes (bf16: autocast, native bf16 CPUs)
# The held-out/test robustness check of each recipe ("standard": none): the name of its metric.
ROBUST_METRIC = {"gaussian": "noisy", "fast-ls-l0": "l0"}   # every other adversarial recipe: "pgd10"
CLEAN_RECIPES = ("standard", "airbench")                      # no robustness check
# Recipes that keep their last epoch, not the best held-out one: airbench's schedule ends on the
# Lookahead average, the model it ships (the held-out check is only reported; no ema_decay beside it).
LAST_EPOCH_RECIPES = ("airbench",)
SCHEDULES = ("cyclic", "onecycle", "triangle")


@dataclass
class TrainConfig:
    """Everything one training run depends on (saved next to the weights)."""

    arch: str = "dm_preact_resnet"
    arch_kwargs: dict = field(default_factory=dict)
    recipe: str = "fgsm-rs"           # one of RECIPE_NAMES
    data: str = "../shared/data/cifar10"
    out: str = "runs/model"
    epochs: int = 15
    batch_size: int = 128
    lr_max: float = 0.2
    schedule: str = "cyclic"          # one of SCHEDULES: "cyclic" (0 -> lr_max -> 0, Wong et al.),
    #                                   "onecycle" (cosine), "triangle" (airbench94: 0.2 -> 1 -> 0.07 x lr_max)
    weight_decay: float = 5e-4
    momentum: float = 0.9
    eps: float = 8 / 255
    alpha: float = 10 / 255           # FGSM step; 1.25 eps is the guarded setting of Wong et al.
    label_smoothing: float = 0.0      # soft labels (loss smoothing)
    trades_beta: float = 0.0          # > 0: TRADES-style clean CE + beta * KL(adv || clean)
    bat_lambda: float = 255 / 10      # Fast-BAT linearisation strength (1/lambda = step size)
    noise_sigma: float = 0.0          # gaussian: std of the noise added to every training image
    l0_pixels: int = 120              # fast-ls-l0: pixels of the 1-step sparse attack (sAT's training k)
    holdout: int = 1000               # last train images kept out for the overfit guard
    overfit_drop: float = 0.2         # stop when held-out PGD accuracy falls this far below its best
    ema_decay: float = 0.0            # > 0: an EMA of the weights and BN statistics, updated every step,
    #                                   is the model checked, kept and shipped (not with airbench's Lookahead)
    limit: int = 0                    # > 0: train on the first `limit` images only (smoke runs)
    test_images: int = 1000
    seed: int = 0
    device: str = "cpu"
    precision: str = "fp32"           # one of PRECISIONS, on the CPU (CUDA trains in fp16 autocast)
