"""Which weight ops of the int8 gradient graph to keep in float: sign agreement with fp32.

Quantizes the shipped backbone's ``backbone_grad`` graph (symmetric int8 Q/DQ, calibrated on
the first 16 CIFAR-10 *training* images x 20 noisy copies) keeping in float: nothing; the loss
head's two Gemms; and the head plus the K backward weight ops nearest the input gradient; then
scores the gradient on the first 16 *test* images x 20 copies against the fp32 graph (ONNX
Runtime, CPU). Also each weight op quantized alone (``--alone``: one graph per op).

    python benchmarks/int8_float_nodes.py --json benchmarks/results/precision-int8-float-nodes.json
"""
import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import onnx

from mspd_edge.calibration.feeds import calibration_feeds
from mspd_edge.calibration.fp16 import WEIGHT_OPS
from mspd_edge.calibration.int8 import float_nodes, own_weights, quantize_int8
from mspd_edge.data import load_npz
from mspd_edge.export import export_bundle
from mspd_edge.runtime.cascade import OrtBackend
from mspd_edge.measure.compare import array_error
from mspd_edge.zoo import load_model

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10"


def _gradients(model, feeds):
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(["grad"], f)[0] for f in feeds])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--near-input", default="0,1,3,5,8")
    parser.add_argument("--method", default="percentile")
    parser.add_argument("--alone", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        export_bundle(load_model("cifar10-backbone"), tmp, classifier=load_model("cifar10-classifier"),
                      verify=False)
        with OrtBackend(tmp) as fp32:
            calibration = calibration_feeds(fp32, list(load_npz(DATA / "train.npz", limit=args.images)[0]))
            scoring = calibration_feeds(fp32, list(load_npz(DATA / "test.npz", limit=args.images)[0]))
        grad = onnx.load(str(Path(tmp) / "backbone_grad.onnx"))
    ref = _gradients(grad, scoring)
    unshared = own_weights(grad)
    head = float_nodes(unshared, near_input=0)
    variants = {"all quantized": [], "loss head float": head}
    variants.update({f"head + {k} nearest the input": float_nodes(unshared, k)
                     for k in map(int, args.near_input.split(",")) if k})
    if args.alone:
        ops = [n.name for n in unshared.graph.node if n.op_type in WEIGHT_OPS]
        variants.update({f"only {op}": [o for o in ops if o != op] for op in ops})
    rows = []
    for name, keep in variants.items():
        model, _ = quantize_int8(grad, calibration, method=args.method, keep=keep)
        err = array_error(_gradients(model, scoring), ref)
        rows.append({"variant": name, "float_ops": len(keep), "cosine": round(err["cosine"], 5),
                     "sign_agreement": round(err["sign_agreement"], 4)})
        print(f"| {name} | {len(keep)} | {err['cosine']:.4f} | {100 * err['sign_agreement']:.2f}% |", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"method": args.method, "images": args.images, "rows": rows},
                                        indent=2) + "\n")


if __name__ == "__main__":
    main()
