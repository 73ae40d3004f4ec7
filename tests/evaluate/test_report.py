"""Evaluation reports: markdown tables, condition titles and the bar chart."""
import cv2
import pytest

from mspd_edge.evaluate.report import SCHEMA, condition_title, markdown_table, plot

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _result():
    entry = {"n": 4, "clean": 0.55, "robust": {"pgd-linf": 0.33, "pgd-l2": 0.4}}
    return {
        "schema": SCHEMA,
        "config": {"data": "test.npz", "images": 4, "seed": 0, "targets": ["t-resnet", "t-vgg"],
                   "attacks": {"pgd-linf": {"eps": 0.0313, "steps": 10}, "pgd-l2": {"eps": 0.5, "steps": 10}},
                   "conditions": ["none", "mspd", "reverted-white", "mspd+jpeg50"]},
        "quality": {"mspd": {"n": 4, "linf": 8 / 255, "l2": 0.98, "ssim": 0.97123, "psnr": 38.1}},
        "results": {"t-resnet": {"none": entry,
                                 "mspd": {"n": 4, "clean": 0.5, "robust": {"pgd-linf": 0.75, "pgd-l2": 0.7}}},
                    "t-vgg": {"none": {"n": 4, "clean": 1.0, "robust": {"pgd-linf": 0.25}}}},
        "cosine": {"t-resnet": {"n": 4, "mean": 0.41, "std": 0.1}},
    }


def test_condition_titles():
    assert [condition_title(c) for c in ("mspd", "reverted-white", "mspd+jpeg50", "mspd-N1", "mspd-F",
                                         "mspd-FBFB", "none", "other")] == \
        ["MSPD", "reverted (white-box)", "MSPD + JPEG q50", "MSPD N=1", "MSPD F only",
         "MSPD FBFB", "no defence", "other"]


def test_markdown_table():
    text = markdown_table(_result())
    assert "**4 images**" in text and "### pgd-linf (eps 0.0313, steps 10)" in text
    assert "| target | no defence | MSPD |" in text and "JPEG" not in text   # absent conditions skipped
    assert "| t-resnet | 55.0 / 33.0 | 50.0 / 75.0 |" in text
    assert "| t-vgg | 100.0 / 25.0 | – |" in text and "| t-vgg | 100.0 / – | – |" in text
    assert "| MSPD | 8.0 | 0.980 | 0.9712 | 38.10 |" in text and "| t-resnet | 0.410 | 0.100 |" in text


def test_partial_result_and_wrong_schema():
    partial = {"schema": SCHEMA, "config": {"targets": ["a", "b"]},
               "results": {"a": {"none": {"n": 2, "clean": 0.5, "robust": {}}}}}
    assert "###" not in markdown_table(partial) and "**2 images**" in markdown_table(partial)   # no attack yet
    partial["results"]["a"]["none"]["robust"]["fgsm"] = 0.25
    assert "| a | 50.0 / 25.0 |" in markdown_table(partial)
    with pytest.raises(ValueError, match="schema"):
        markdown_table({"schema": "other"})


def test_plot_writes_png(tmp_path):
    path = plot(_result(), tmp_path / "plots" / "accuracy.png", attack="pgd-l2")
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    image = cv2.imread(str(path))
    assert image is not None and image.shape[0] > 0 and image.shape[1] > 0
    assert [p.name for p in path.parent.iterdir()] == ["accuracy.png"]   # no temporary file left
    with pytest.raises(ValueError, match="nothing to plot"):
        plot(_result(), tmp_path / "x.png", conditions=("mspd-N1",))
