"""``mspd-edge calibrate --report``: the precision report (:mod:`mspd_edge.measure.precision`)."""
from pathlib import Path

import click

from ..labels import pipeline_mode
from .args import settings_from
from .common import write_report
from .compare_args import default_threads, load_image_set


@click.command("calibrate")
@click.option("--report", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: precision.json, precision.md and precision.png.")
@click.option("--data", default=None, help="Images: a CIFAR-style .npz, a folder or a glob.  "
                                           "[default: ../shared/data/cifar10/test.npz beside the repo]")
@click.option("--images", "count", type=click.IntRange(min=1), default=16, show_default=True,
              help="Images (the first ones of --data).")
@click.option("--batch-sizes", default="1,16", show_default=True, help="Batch sizes to time.")
@click.option("--backbone", default="cifar10-backbone", show_default=True, help="Backbone (zoo name or checkpoint).")
@click.option("--classifier", help="Label classifier.  [default: the backbone's pair]")
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads.  [default: all this process may use]")
@click.option("--n-samples", type=click.IntRange(min=1), default=20, show_default=True, help="Noisy copies.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Noise seed.")
@click.option("--rounds", type=click.IntRange(min=1), default=3, show_default=True,
              help="Timing rounds (all rows interleaved in each; the median is reported).")
def calibrate_command(out_dir, data, count, batch_sizes, backbone, classifier, threads, n_samples,
                      seed, rounds):
    """Measure every precision that runs here against fp32, on the same images and noise.

    Per backend (torch, ort) and precision (fp32, bf16, fp16, int8): the input gradient's
    cosine and sign agreement, the protected 8-bit images' identical share and max |d|, and
    ms per image at each batch size with the speed-up over the backend's fp32. Writes
    precision.json, precision.md and precision.png to --report; precisions that cannot run
    here are listed with the reason.
    """
    from ..backends import BackendError, BackendOptions
    from ..measure.precision import markdown, plot, precision_report
    from .args import usage_error
    from .bench import default_data, parse_sizes

    options = BackendOptions(backbone=backbone, classifier=classifier, threads=threads or default_threads())
    images = load_image_set(data or default_data(), count)
    settings = settings_from({"n_samples": n_samples, "epochs": "FB", "seed": seed},
                             pipeline_mode("classifier"))
    try:
        report = precision_report(images, options, settings, parse_sizes(batch_sizes), rounds,
                                  log=lambda line: click.echo(line, err=True))
    except BackendError as exc:
        raise usage_error(exc) from None
    out_dir.mkdir(parents=True, exist_ok=True)
    write_report(out_dir / "precision.json", report)
    (out_dir / "precision.md").write_text(markdown(report))
    try:
        plot(report, out_dir / "precision.png")
    except ImportError:
        click.echo("note: no precision.png: matplotlib is not installed (pip install "
                   "'mspd-edge[eval]')", err=True)
    click.echo(markdown(report))
