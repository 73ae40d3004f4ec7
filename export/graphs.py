"""Forward graphs: a PyTorch classifier (or an ONNX file made elsewhere) -> ``images -> logits``.

PyTorch models go through ``torch.onnx.export(dynamo=False)`` (the TorchScript exporter: no
extra dependency, and it writes plain opset-17 operators for every zoo architecture), then
through :func:`~mspd_edge.export.onnxutil.prepare_forward`, which every ONNX input shares:
canonical names ``images``/``logits``, a symbolic batch ``n``, folded constants.
"""
import io
import warnings

import onnx

from mspd_edge.bundle import BATCH, IMAGES, LOGITS
from mspd_edge.util import first_line

from .onnxutil import OPSET, ExportError, prepare_forward


def torch_forward_graph(model, input_size, *, opset=OPSET):
    """The canonical forward graph of torch module ``model`` for inputs ``(n, *input_size)``."""
    import torch

    was_training = model.training
    model.eval()
    example = torch.rand(2, *input_size)
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (example,), buffer, dynamo=False, opset_version=opset,
                              input_names=[IMAGES], output_names=[LOGITS],
                              dynamic_axes={IMAGES: {0: BATCH}, LOGITS: {0: BATCH}},
                              do_constant_folding=True)
    except Exception as err:  # noqa: BLE001 - the exporter raises many types
        raise ExportError(f"torch.onnx.export failed for {type(model).__name__}: {first_line(err)}") from err
    finally:
        model.train(was_training)
    return prepare_forward(onnx.load_from_string(buffer.getvalue()), opset=opset)


def onnx_forward_graph(source, *, opset=OPSET):
    """The canonical forward graph of an ONNX classifier (path, bytes or ModelProto)."""
    if isinstance(source, onnx.ModelProto):
        model = source
    elif isinstance(source, (bytes, bytearray)):
        model = onnx.load_from_string(bytes(source))
    else:
        try:
            model = onnx.load(str(source))
        except FileNotFoundError:
            raise
        except Exception as err:  # noqa: BLE001
            raise ExportError(f"{source}: not a readable ONNX model ({err})") from None
    return prepare_forward(model, opset=opset)
