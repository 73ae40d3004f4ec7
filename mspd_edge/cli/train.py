"""`mspd-edge train`: the training loop from the command line."""
import json

import click

from ..train.config import PRECISIONS, RECIPE_NAMES, SCHEDULES, TrainConfig


def _check_precision(ctx, param, value):
    from ..backends.precision import cpu_reason

    why = cpu_reason(value) if value != "fp32" and ctx.params.get("device", "cpu") == "cpu" else None
    if why:
        raise click.BadParameter(why.removeprefix(f"--precision {value} on the CPU "))
    return value


def _parse_kwargs(ctx, param, value):
    try:
        return json.loads(value) if value else {}
    except json.JSONDecodeError as err:
        raise click.BadParameter(f"not JSON: {err}") from None


@click.command("train")
@click.option("--arch", default=TrainConfig.arch, show_default=True, help="Architecture name (zoo registry).")
@click.option("--arch-kwargs", default="", callback=_parse_kwargs, help='JSON, e.g. \'{"base_width": 16}\'.')
@click.option("--recipe", type=click.Choice(RECIPE_NAMES), default=TrainConfig.recipe, show_default=True)
@click.option("--data", default=TrainConfig.data, show_default=True, help="Folder with train.npz/test.npz.")
@click.option("-o", "--out", default=TrainConfig.out, show_default=True, help="Run folder (checkpoints, report).")
@click.option("--epochs", type=int, default=TrainConfig.epochs, show_default=True)
@click.option("--batch-size", type=int, default=TrainConfig.batch_size, show_default=True)
@click.option("--lr-max", type=float, default=TrainConfig.lr_max, show_default=True)
@click.option("--schedule", type=click.Choice(SCHEDULES), default=TrainConfig.schedule, show_default=True)
@click.option("--momentum", type=float, default=TrainConfig.momentum, show_default=True, help="Nesterov momentum.")
@click.option("--weight-decay", type=float, default=TrainConfig.weight_decay, show_default=True,
              help="airbench: per 1,024 images, decoupled from the learning rate.")
@click.option("--eps", type=float, default=8.0, show_default=True, help="Training budget in 1/255 units.")
@click.option("--alpha", type=float, default=10.0, show_default=True, help="FGSM step in 1/255 units.")
@click.option("--label-smoothing", type=float, default=0.0, show_default=True, help="Soft labels.")
@click.option("--trades-beta", type=float, default=0.0, show_default=True, help="> 0: TRADES-style loss.")
@click.option("--noise-sigma", type=float, default=TrainConfig.noise_sigma, show_default=True,
              help="gaussian: std of the noise added to every training image (randomized smoothing).")
@click.option("--l0-pixels", type=int, default=TrainConfig.l0_pixels, show_default=True,
              help="fast-ls-l0: pixels of the 1-step sparse training attack.")
@click.option("--ema-decay", type=float, default=TrainConfig.ema_decay, show_default=True,
              help="> 0: check, keep and ship an EMA of the weights (decay per step), not the weights.")
@click.option("--limit", type=int, default=0, help="Train on the first LIMIT images only.")
@click.option("--test-images", type=int, default=TrainConfig.test_images, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--precision", type=click.Choice(PRECISIONS), default=TrainConfig.precision, show_default=True,
              callback=_check_precision,
              help="CPU training passes: bf16 autocast (a CPU with native bf16; CUDA always trains in fp16 autocast).")
@click.option("--no-resume", is_flag=True, help="Start over even if OUT/last.pt exists.")
def train_command(eps, alpha, no_resume, **options):
    """Train a model (standard, FGSM-RS, N-FGSM, Fast-BAT, Gaussian noise, Fast-LS-l0 or airbench);
    resumable, reports clean and robust accuracy (PGD-10; noisy for gaussian; sparse-L0 for fast-ls-l0)."""
    from ..train.loop import train

    cfg = TrainConfig(eps=eps / 255, alpha=alpha / 255, **options)
    report = train(cfg, resume=not no_resume, log=lambda line: click.echo(line, err=True))
    click.echo(json.dumps({k: v for k, v in report.items() if k == "best_epoch" or k.startswith("test_")}))
