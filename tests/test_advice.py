"""The notes said before a job's work: a thumbnail-scale backbone on photos, resized images."""
from types import SimpleNamespace

from mspd_edge import defaults
from mspd_edge.advice import photo_model_note, resized_note

CIFAR = SimpleNamespace(name="cifar10-backbone", dataset="cifar10")
PHOTO = SimpleNamespace(name=defaults.PHOTO_BACKBONE, dataset="imagenet")


def test_a_photo_under_a_32x32_backbone_gets_the_note():
    note = photo_model_note(CIFAR, (3, 32, 32), [(4000, 3000), (32, 32), (100, 75)])
    assert note.startswith("note: 1 photo(s) go through cifar10-backbone (cifar10) as 32x32 thumbnails")
    assert f"--backbone {defaults.PHOTO_BACKBONE} --classifier {defaults.PHOTO_CLASSIFIER}" in note


def test_no_note_for_thumbnails_or_the_photo_models():
    assert photo_model_note(CIFAR, (3, 32, 32), [(32, 32), (100, 75), (127, 4000)]) is None
    assert photo_model_note(PHOTO, (3, 224, 224), [(4000, 3000)]) is None


def test_images_of_another_size_than_the_model_s_get_one_note():
    assert resized_note((3, 32, 32), [(32, 32), [32, 32]]) is None
    assert resized_note((3, 32, 32), [(32, 32), (100, 75), [64, 32]]) == (
        "note: 2 image(s) not 32x32: the perturbation is computed at 32x32 and resized to each image")
