"""``--precision``: which backend runs which precision where, ``auto``, and the one-line errors."""
import pytest
from click.testing import CliRunner

from mspd_edge import cli
from mspd_edge.backends import BackendOptions, build_backend, unavailable_reason
from mspd_edge.backends import precision as prec
from mspd_edge.backends.registry import resolve_precision
from mspd_edge.backends.specs import parse_specs, spec_backend, split_spec

HAS_BF16 = prec.cpu_reason("bf16") is None


def invoke(*args):
    return CliRunner().invoke(cli.main, [str(a) for a in args])


def test_cpu_flags_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16\n\nprocessor\t: 1\n")
    flags = prec.cpu_flags(info)
    assert {"avx512f", "avx512_bf16"} <= flags
    assert prec.cpu_reason("bf16", flags) is None
    assert "AMX-FP16" in prec.cpu_reason("fp16", flags | {"avx512_fp16"})
    assert prec.cpu_reason("fp16", flags | {"amx_fp16"}) is None
    assert prec.cpu_flags(tmp_path / "missing") == frozenset()
    plain = prec.cpu_reason("bf16", frozenset({"avx2", "avx512f"}))
    assert "AVX512_BF16 or AMX-BF16" in plain and "emulate" in plain


def test_reasons_name_the_missing_feature():
    assert "ort, trt" in prec.torch_reason("int8", "cpu")
    assert prec.torch_reason("fp32", "cpu") is None
    assert "CPU provider" in prec.ort_reason("fp16", "cpu")
    assert prec.ort_reason("fp16", "cuda") is None and prec.ort_reason("int8", "tensorrt") is None
    assert "tensorrt" in prec.ort_reason("int8", "cuda")
    assert "torch precision" in prec.ort_reason("bf16", "cpu")
    assert prec.trt_reason("int8") is None and "fp16" in prec.trt_reason("bf16")
    assert prec.export_reason("int8") is None and "bf16" in prec.export_reason("bf16")


def test_auto_is_the_measured_default_where_it_runs():
    torch_cpu = resolve_precision("torch", BackendOptions(precision="auto"))
    assert torch_cpu.precision == ("bf16" if HAS_BF16 else "fp32")
    assert resolve_precision("ort", BackendOptions(precision="auto")).precision == "fp32"
    assert resolve_precision("torch", BackendOptions(precision="fp16")).precision == "fp16"
    # a default the hardware cannot run falls back to fp32
    assert prec.default_precision("torch", "cpu", lambda p: "no") == "fp32"
    assert prec.default_precision("torch", "cpu", lambda p: None) == prec.DEFAULTS[("torch", "cpu")]


def test_auto_with_a_model_dir_is_the_bundle_precision(tmp_path):
    (tmp_path / "manifest.json").write_text('{"format": "mspd-edge-onnx", "format_version": 1, "backbone": "b.onnx", '
                                            '"backbone_grad": "g.onnx", "mcgs_step": "s.onnx", '
                                            '"input_size": [3, 32, 32], "eps": 0.03, "precision": "int8"}')
    options = BackendOptions(precision="auto", model_dir=tmp_path)
    assert resolve_precision("ort", options).precision == "int8"


def test_unknown_precision_and_unsupported_ones_are_one_line():
    assert "unknown precision" in unavailable_reason("torch", BackendOptions(precision="fp8"))
    why = unavailable_reason("torch", BackendOptions(precision="int8"))
    assert why and "\n" not in why
    with pytest.raises(ValueError, match="--backend ort: .*CPU provider"):
        build_backend("ort", BackendOptions(precision="fp16"))


def test_specs_carry_a_precision():
    assert split_spec("ort@int8:grad") == ("ort", "int8", "grad")
    assert split_spec("torch") == ("torch", None, None)
    assert parse_specs("torch@fp32,torch@bf16,ort@int8") == ["torch@fp32", "torch@bf16", "ort@int8"]
    for bad in ("torch@fp8", "torch@", "torch@bf16:grad", "ort:"):
        with pytest.raises(ValueError):
            parse_specs(bad)
    name, options = spec_backend("ort-cuda@fp16:grad", BackendOptions(precision="auto"))
    assert (name, options.provider, options.precision, options.route) == ("ort", "cuda", "fp16", "grad")
    assert spec_backend("torch", BackendOptions(precision="fp32"))[1].precision == "fp32"


@pytest.mark.parametrize("args, words", [
    (["--backend", "torch", "--precision", "int8"], "int8 runs on the runtime backends"),
    (["--backend", "ort", "--precision", "fp16"], "CPU provider runs fp16 graphs"),
    (["--backend", "ort", "--precision", "bf16"], "bf16 is a torch precision"),
])
def test_cli_refuses_with_one_line(args, words, tmp_path):
    result = invoke("protect", tmp_path, "-o", tmp_path / "out", *args)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0]


@pytest.mark.skipif(HAS_BF16, reason="this CPU has bf16: nothing to refuse")
def test_cli_refuses_bf16_on_a_cpu_without_it(tmp_path):
    result = invoke("protect", tmp_path, "-o", tmp_path / "out", "--precision", "bf16")
    assert result.exit_code == 2 and "AVX512_BF16 or AMX-BF16" in result.output


def test_export_refuses_bf16_in_one_line(tmp_path):
    result = invoke("export", "--model", "cifar10-backbone", "--precision", "bf16", "-o", tmp_path)
    assert result.exit_code == 2
    assert result.output.strip() == ("error: --precision bf16: bf16 graphs are not exported (bf16 "
                                     "is torch autocast): use one of fp32, fp16, int8")


@pytest.mark.skipif(prec.cpu_reason("fp16") is None, reason="this CPU has AMX-FP16")
def test_cli_refuses_fp16_on_a_cpu_without_amx_fp16(tmp_path):
    result = invoke("protect", tmp_path, "-o", tmp_path / "out", "--precision", "fp16")
    assert result.exit_code == 2 and "needs AMX-FP16" in result.output
    assert len(result.output.strip().splitlines()) == 1
