"""Every zoo architecture, at a reduced size: shapes, input gradients, state-dict round trip."""
import io

import pytest
import torch
from model_helpers import REDUCED as SHARED_REDUCED

from mspd_edge.zoo.info import CIFAR10_MEAN, CIFAR10_STD
from mspd_edge.zoo.registry import ARCHITECTURES, build

# The shared reduced sizes, plus variants: the ReLU DeepMind WideResNet, the airbench CifarNet
# (whitening stem, logit scale, flip-and-translate TTA).
VARIANTS = {"dm_wide_resnet_relu": ("dm_wide_resnet", dict(depth=16, width=2, activation="relu")),
            "cifarnet_airbench": ("cifarnet", dict(widths=(8, 16, 16), stem=24, whiten=2, bn_eps=1e-12,
                                                   logit_scale=1 / 9, translate_tta=True))}
REDUCED = {**SHARED_REDUCED, **{case: kwargs for case, (_, kwargs) in VARIANTS.items()}}


def _arch(case):
    return VARIANTS[case][0] if case in VARIANTS else case


def _make(case, num_classes=10):
    torch.manual_seed(0)
    return build(_arch(case), num_classes=num_classes, **REDUCED[case])


def test_every_architecture_has_a_reduced_case():
    assert {_arch(case) for case in REDUCED} == set(ARCHITECTURES)


@pytest.mark.parametrize("case", REDUCED)
def test_shape_and_input_gradient(case):
    model = _make(case, num_classes=7).eval()
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    logits = model(x)
    assert logits.shape == (2, 7)
    logits[:, 0].sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("case", REDUCED)
def test_state_dict_round_trip(case):
    model = _make(case).eval()
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    copy = _make(case).eval()
    for tensor in copy.state_dict().values():
        tensor.zero_()
    copy.load_state_dict(torch.load(buffer, weights_only=True))
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(copy(x), model(x))
    assert not any(k.startswith("normalize.") for k in model.state_dict())


def test_normalisation_is_inside_the_model():
    plain = build("resnet", base_width=4).eval()
    normed = build("resnet", base_width=4, mean=CIFAR10_MEAN, std=CIFAR10_STD).eval()
    normed.load_state_dict(plain.state_dict())
    x = torch.rand(2, 3, 32, 32)
    mean, std = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1), torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(normed(x), plain((x - mean) / std))


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="6n \\+ 4"):
        build("dm_wide_resnet", depth=12)
    with pytest.raises(ValueError, match="9n \\+ 2"):
        build("resnext", depth=12)
    with pytest.raises(ValueError, match="unknown architecture"):
        build("vgg")


def test_same_padding_inside_the_convolution_equals_tf_same():
    """The stride-1 convolutions pad inside themselves: the same as TF-'SAME' done by hand."""
    import torch.nn.functional as F

    from mspd_edge.zoo.dm_resnet import _same_conv, _same_pad

    torch.manual_seed(0)
    x = torch.randn(2, 8, 9, 9)
    for stride, by_hand in ((1, (1, 1, 1, 1)), (2, (0, 1, 0, 1))):
        conv = _same_conv(8, 4, stride)
        expected = F.conv2d(F.pad(x, by_hand), conv.weight, stride=stride)
        assert torch.allclose(conv(_same_pad(x, stride)), expected, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="unsupported stride 3"):
        _same_conv(8, 4, 3)


def test_translate_tta_weighs_the_shifted_mirrored_views():
    model = _make("cifarnet_airbench").eval()
    x = torch.rand(2, 3, 32, 32)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")
    views = [x, padded[:, :, :32, :32], padded[:, :, 2:, 2:]]
    with torch.no_grad():
        mirrored = [0.5 * (model._logits(v) + model._logits(v.flip(3))) for v in views]
        torch.testing.assert_close(model(x), 0.5 * mirrored[0] + 0.25 * (mirrored[1] + mirrored[2]))
        model.train()
        assert model(x).shape == (2, 10)     # one plain view in training
