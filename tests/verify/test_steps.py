"""--simulate steps: parsing, and that they are the real re-encodings (Pillow files read back)."""
import io

import numpy as np
import pytest
import skimage.data
from PIL import Image

from mspd_edge.verify.steps import apply_scenario, parse_scenarios, parse_step


def test_scenarios_are_parsed_and_validated():
    assert parse_scenarios("jpeg75, resize0.5+WEBP80,jpeg75") == ("jpeg75", "resize0.5+webp80")
    assert parse_step("crop0.9") == ("crop", 0.9)
    for bad in ("jpeg", "jpeg101", "jpeg7.5", "resize0", "crop1", "blur0", "gif80", "resize-1", ""):
        with pytest.raises(ValueError):
            parse_scenarios(bad)


def test_jpeg_and_webp_are_the_files_pillow_writes():
    photo = skimage.data.astronaut()[::4, ::4]
    for fmt, name in (("JPEG", "jpeg75"), ("WEBP", "webp80")):
        buffer = io.BytesIO()
        Image.fromarray(photo).save(buffer, format=fmt, quality=int(name[4:]))
        from_file = np.asarray(Image.open(io.BytesIO(buffer.getvalue())))
        simulated = apply_scenario(photo, name)
        assert np.array_equal(simulated, from_file) and not np.array_equal(simulated, photo)


def test_sizes_modes_and_chains():
    photo = skimage.data.astronaut()[:100, :80]
    assert apply_scenario(photo, "resize0.5").shape == (50, 40, 3)
    assert apply_scenario(photo, "crop0.9").shape == (90, 72, 3)
    assert apply_scenario(photo, "resize0.75+jpeg75").shape == (75, 60, 3)
    assert apply_scenario(photo[:, :, 0], "jpeg75").shape == (100, 80)          # gray stays gray
    rgba = np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)])
    assert apply_scenario(rgba, "jpeg75").shape == (100, 80, 3)                   # JPEG has no alpha
    blurred = apply_scenario(photo, "blur4").astype(float)
    assert np.abs(np.diff(blurred, axis=1)).mean() < np.abs(np.diff(photo.astype(float), axis=1)).mean() * 0.7
