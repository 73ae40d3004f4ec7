"""`mspd-edge evaluate --certify` and `--attacks sparse-l0` end to end on a few real test images."""
import json
import shutil

import pytest
from click.testing import CliRunner

from mspd_edge.certify import max_radius
from mspd_edge.cli import main
from mspd_edge.evaluate import run as run_module
from mspd_edge.zoo.locate import WEIGHTS_DIR

N_IMAGES = 3
PLAIN = "cifar10-target-nonrobust"
SIGMA = 0.25
CONDITIONS = ("none", "mspd", "reverted-white")
RADII = ("0.0", "0.25", "0.5", "0.75", "1.0")


def _args(cifar10_dir, out, targets, *extra):
    return ["evaluate", "--data", str(cifar10_dir / "test.npz"), "--images", str(N_IMAGES), "-o", str(out),
            "--targets", targets, "--conditions", ",".join(CONDITIONS), "--n-samples", "2",
            "--threads", "1", "-q", *extra]


@pytest.fixture(scope="module")
def smoothed(tmp_path_factory):
    """A smoothed target's manifest: the non-robust weights with a smoothing_sigma (plumbing only)."""
    folder = tmp_path_factory.mktemp("smoothed")
    manifest = json.loads((WEIGHTS_DIR / f"{PLAIN}.json").read_text())
    manifest.update(name="smoothed-test", smoothing_sigma=SIGMA)
    (folder / "smoothed-test.json").write_text(json.dumps(manifest))
    shutil.copy(WEIGHTS_DIR / f"{PLAIN}.pt", folder / "smoothed-test.pt")
    return str(folder / "smoothed-test.json")


@pytest.fixture(scope="module")
def certified_run(cifar10_dir, smoothed, tmp_path_factory):
    out = tmp_path_factory.mktemp("certify")
    args = _args(cifar10_dir, out, f"{smoothed},{PLAIN}", "--attacks", "pgd-linf", "--pgd-steps", "1",
                 "--certify", "--certify-n", "40", "--certify-n0", "8", "--certify-alpha", "0.01")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return out, args, json.loads((out / "results.json").read_text())


def test_certified_results_follow_the_schema(certified_run, smoothed):
    out, _, result = certified_run
    assert result["config"]["certify"] == {"n0": 8, "n": 40, "alpha": 0.01}
    assert set(result["certified"]) == {smoothed}
    for condition in CONDITIONS:
        entry = result["certified"][smoothed][condition]
        assert set(entry) == {"sigma", "n0", "n", "alpha", "max_radius", "accuracy", "mean_radius"}
        assert (entry["sigma"], entry["n0"], entry["n"], entry["alpha"]) == (SIGMA, 8, 40, 0.01)
        assert entry["max_radius"] == pytest.approx(max_radius(SIGMA, 40, 0.01))
        assert list(entry["accuracy"]) == list(RADII)
        values = list(entry["accuracy"].values())
        assert values == sorted(values, reverse=True) and all(0 <= v <= 1 for v in values)
        assert 0 <= entry["mean_radius"] <= entry["max_radius"]
    table = (out / "results.md").read_text()
    assert "Certified accuracy" in table and f"{max_radius(SIGMA, 40, 0.01):.3f}" in table
    assert (out / "certified.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_smoothed_targets_are_certified_not_attacked(certified_run, smoothed):
    _, _, result = certified_run
    assert result["results"][smoothed]["none"]["robust"] == {}
    assert "clean" in result["results"][smoothed]["none"]
    assert "pgd-linf" in result["results"][PLAIN]["none"]["robust"]
    assert PLAIN not in result["certified"]


def test_a_certified_run_resumes_without_recertifying(certified_run, monkeypatch):
    out, args, before = certified_run
    calls = []
    monkeypatch.setattr(run_module, "certified_entry", lambda *a, **k: calls.append(a))
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert calls == [] and json.loads((out / "results.json").read_text())["certified"] == before["certified"]
    changed = [a if a != "40" else "80" for a in args]
    result = CliRunner().invoke(main, changed)
    assert result.exit_code == 2 and "certify" in result.output


def test_certify_without_a_smoothed_target_is_refused(cifar10_dir, tmp_path):
    result = CliRunner().invoke(main, _args(cifar10_dir, tmp_path, PLAIN, "--certify"))
    assert result.exit_code == 2 and "smoothing_sigma" in result.output


def test_sparse_l0_in_evaluate(cifar10_dir, tmp_path):
    args = _args(cifar10_dir, tmp_path, PLAIN, "--attacks", "sparse-l0", "--l0-pixels", "5", "--sparse-steps", "5",
                 "--conditions", "none")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["config"]["attacks"] == {"sparse-l0": {"pixels": 5, "iterations": 5}}
    entry = saved["results"][PLAIN]["none"]
    assert 0 <= entry["robust"]["sparse-l0"] <= entry["clean"]
    assert "sparse-l0 (pixels 5, iterations 5)" in (tmp_path / "results.md").read_text()
