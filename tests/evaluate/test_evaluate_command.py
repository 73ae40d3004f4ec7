"""`mspd-edge evaluate` end to end on a few real test images with the shipped models."""
import json

import pytest
from click.testing import CliRunner

from mspd_edge.cli import main
from mspd_edge.evaluate import run as run_module
from mspd_edge.evaluate.conditions import CONDITIONS
from mspd_edge.evaluate.report import SCHEMA

N_IMAGES = 4
TARGET = "cifar10-target-nonrobust"
EPS = 8 / 255


def _args(cifar10_dir, out, *extra):
    # The backbone stands in for the gray-box reverser: this checks plumbing, not strength.
    return ["evaluate", "--data", str(cifar10_dir / "test.npz"), "--images", str(N_IMAGES), "-o", str(out),
            "--targets", TARGET, "--attacks", "pgd-linf", "--pgd-steps", "2", "--n-samples", "2",
            "--graybox", "cifar10-backbone", "--threads", "1", "-q", *extra]


@pytest.fixture
def counted_attacks(monkeypatch):
    calls = []

    def counting(model, x, y, spec, **kwargs):
        calls.append(spec.name)
        return real(model, x, y, spec, **kwargs)

    real = run_module.robust_flags
    monkeypatch.setattr(run_module, "robust_flags", counting)
    return calls


@pytest.fixture(scope="module")
def finished_run(cifar10_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    result = CliRunner().invoke(main, _args(cifar10_dir, out))
    assert result.exit_code == 0, result.output
    return out, json.loads((out / "results.json").read_text())


def test_json_layout_is_the_documented_one(finished_run):
    """docs/evaluate.md documents these keys; a change here is a schema version change."""
    _, result = finished_run
    assert set(result) == {"schema", "config", "machine", "quality", "results", "cosine", "seconds"}
    assert set(result["config"]) == {"data", "images", "seed", "defence", "graybox", "targets", "attacks",
                                     "conditions"}
    assert set(result["config"]["defence"]) == {"backbone", "classifier", "eps", "n_samples", "lr", "epochs",
                                                "label_mode", "backend", "precision"}
    assert set(result["config"]["attacks"]["pgd-linf"]) == {"eps", "steps"}
    assert set(result["quality"]["mspd"]) == {"n", "linf", "l2", "ssim", "psnr", "label_accuracy"}
    assert set(result["results"][TARGET]["none"]) == {"n", "clean", "robust"}
    assert set(result["cosine"][TARGET]) == {"n", "mean", "std"}


def test_every_target_and_condition_is_measured(finished_run):
    out, result = finished_run
    assert result["schema"] == SCHEMA
    assert set(result["config"]["conditions"]) == set(CONDITIONS)
    for condition in CONDITIONS:
        entry = result["results"][TARGET][condition]
        assert entry["n"] == N_IMAGES
        assert 0 <= entry["robust"]["pgd-linf"] <= entry["clean"] <= 1
    assert (out / "results.md").read_text().count("|") > 10
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_quality_and_diagnostics_are_recorded(finished_run):
    _, result = finished_run
    protected = result["quality"]["mspd"]
    assert 0 < protected["linf"] <= EPS + 1e-9 and 0 < protected["ssim"] <= 1
    assert 0 <= protected["label_accuracy"] <= 1
    assert "none" not in result["quality"]
    assert -1 <= result["cosine"][TARGET]["mean"] <= 1
    assert result["config"]["defence"]["n_samples"] == 2


def test_a_finished_run_resumes_without_recomputing(finished_run, cifar10_dir, counted_attacks):
    out, before = finished_run
    result = CliRunner().invoke(main, _args(cifar10_dir, out))
    assert result.exit_code == 0, result.output
    assert counted_attacks == []
    assert json.loads((out / "results.json").read_text())["results"] == before["results"]


def test_an_added_attack_only_runs_that_attack(cifar10_dir, tmp_path, counted_attacks):
    out = tmp_path / "run"
    args = _args(cifar10_dir, out, "--conditions", "none,mspd")
    assert CliRunner().invoke(main, args).exit_code == 0
    assert counted_attacks == ["pgd-linf"] * 2
    args[args.index("--attacks") + 1] = "pgd-linf,pgd-l2"
    assert CliRunner().invoke(main, args).exit_code == 0
    assert counted_attacks[2:] == ["pgd-l2"] * 2


def test_a_run_folder_with_other_settings_is_refused(finished_run, cifar10_dir):
    out, _ = finished_run
    result = CliRunner().invoke(main, _args(cifar10_dir, out, "--seed", "7"))
    assert result.exit_code == 2
    assert "other settings (seed)" in result.output


def test_the_backbone_is_refused_as_a_target(cifar10_dir, tmp_path):
    args = _args(cifar10_dir, tmp_path / "run")
    args[args.index("--targets") + 1] = "cifar10-backbone"
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert "is the defence's backbone" in result.output


def test_a_slow_attack_resumes_mid_measurement(cifar10_dir, tmp_path, monkeypatch):
    """AutoAttack and Square save their flags chunk by chunk: a run stopped after the first chunk
    attacks only the rest when run again, and ends with the uninterrupted run's number."""
    monkeypatch.setattr(run_module, "RESUME_CHUNK", 2)
    real, calls = run_module.robust_flags, []

    def stopping_after_one_chunk(model, x, y, spec, **kwargs):
        calls.append(len(y))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(model, x, y, spec, **kwargs)

    def args(out):
        return _args(cifar10_dir, out, "--conditions", "none", "--attacks", "square", "--square-queries", "20")

    assert CliRunner().invoke(main, args(tmp_path / "whole")).exit_code == 0
    whole = json.loads((tmp_path / "whole" / "results.json").read_text())
    assert "partial" not in whole
    monkeypatch.setattr(run_module, "robust_flags", stopping_after_one_chunk)
    CliRunner().invoke(main, args(tmp_path / "stopped"))
    stopped = json.loads((tmp_path / "stopped" / "results.json").read_text())
    assert list(stopped["partial"]) == [f"{TARGET}/none/square"] and len(stopped["partial"][f"{TARGET}/none/square"]) == 2
    monkeypatch.setattr(run_module, "robust_flags", real)
    resumed = CliRunner().invoke(main, args(tmp_path / "stopped"))
    assert resumed.exit_code == 0, resumed.output
    result = json.loads((tmp_path / "stopped" / "results.json").read_text())
    assert "partial" not in result
    assert result["results"][TARGET]["none"]["robust"] == whole["results"][TARGET]["none"]["robust"]
