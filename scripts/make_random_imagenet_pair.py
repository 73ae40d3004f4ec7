"""Write the paper's ImageNet pair with random weights, in RobustBench's folder and key layout.

    python scripts/make_random_imagenet_pair.py OUT [--seed 0]
    MSPD_EDGE_MODELS=OUT mspd-edge protect photos/ -o out/ \\
        --backbone Singh2023Revisiting_ViT-S-ConvStem --classifier Tian2022Deeper_DeiT-B

No model hub is reachable here, so the real checkpoints cannot be fetched; these stand-ins have
the real architectures, key names and shapes (fp32, 91 MB and 346 MB) and random weights,
so that everything around the models (loading, export, the ONNX runtime, parity, speed, memory)
runs at the real size. Their predictions and protection mean nothing.

Files (RobustBench's ``models/<dataset>/<threat_model>/<id>.pt``):

* ``imagenet/Linf/Singh2023Revisiting_ViT-S-ConvStem.pt``: the state dict of RobustBench's
  loaded model, ``normalize_model(vit_s_cvst)``: ``normalize.mean``/``normalize.std`` plus the
  timm keys under ``model.``;
* ``imagenet/corruptions/Tian2022Deeper_DeiT-B.pt``: timm's DeiT-B keys, no prefix (the
  release file timm loads into its VisionTransformer).

The sizes are those of ``ROBUSTBENCH`` (tests reduce them there).
"""
import argparse
from pathlib import Path

import torch

from mspd_edge.defaults import PHOTO_BACKBONE as BACKBONE, PHOTO_CLASSIFIER as CLASSIFIER
from mspd_edge.zoo.locate import robustbench_relative
from mspd_edge.zoo.registry import build
from mspd_edge.zoo.robustbench_ids import ROBUSTBENCH

IMAGENET_CLASSES = 1000
WRAPPED = {BACKBONE}   # ids saved in RobustBench's normalize_model layout (normalize.* + model.*)


def random_state(name, seed):
    """The state dict of RobustBench id ``name`` with seeded random weights, in its file's layout."""
    spec = ROBUSTBENCH[name]
    torch.manual_seed(seed)
    model = build(spec["arch"], num_classes=IMAGENET_CLASSES, **spec["arch_kwargs"])
    state = model.state_dict()
    if name not in WRAPPED:
        return state
    wrapped = {"normalize.mean": model.normalize.mean.clone(), "normalize.std": model.normalize.std.clone()}
    return {**wrapped, **{f"model.{key}": value for key, value in state.items()}}


def write_pair(root, seed=0):
    """Write both checkpoints under ``root`` (seeds ``seed`` and ``seed + 1``); their paths."""
    paths = []
    for offset, name in enumerate((BACKBONE, CLASSIFIER)):
        path = Path(root) / robustbench_relative(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".pt.partial")
        torch.save(random_state(name, seed + offset), partial)
        partial.replace(path)
        paths.append(path)
    return paths


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="models folder (use it as $MSPD_EDGE_MODELS)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for path in write_pair(args.out, args.seed):
        print(f"{path} ({path.stat().st_size / 2**20:.0f} MiB)")


if __name__ == "__main__":
    main()
