"""Which models fit the images: the notes said before a job's work, from the images' sizes."""
from . import defaults


def photo_model_note(backbone, input_size, sizes):
    """The note for images of ``sizes`` ``[(width, height), ...]`` about to go through
    ``backbone`` (a ModelInfo-like object with ``name`` and ``dataset``) at ``input_size``
    (C, H, W), or None.

    A backbone whose input is far smaller than the images (the CIFAR-10 32x32 default on a
    photo) computes the perturbation on a thumbnail with classes that cannot describe a photo.
    """
    height, width = input_size[1:]
    photos = sum(w >= defaults.PHOTO_SCALE * width and h >= defaults.PHOTO_SCALE * height
                 for w, h in sizes)
    if not photos or backbone.name == defaults.PHOTO_BACKBONE:
        return None
    dataset = getattr(backbone, "dataset", None) or "its dataset"
    return (f"note: {photos} photo(s) go through {backbone.name} ({dataset}) as {width}x{height} "
            f"thumbnails: expect coarse colour blotches in flat areas and labels of its classes; "
            f"for photos use the ImageNet pair at 224x224: `mspd-edge models pull "
            f"{defaults.PHOTO_BACKBONE} {defaults.PHOTO_CLASSIFIER}`, then `--backbone "
            f"{defaults.PHOTO_BACKBONE} --classifier {defaults.PHOTO_CLASSIFIER}`")


def resized_note(input_size, sizes):
    """The note for images of ``sizes`` other than the model's ``input_size`` (C, H, W), or None."""
    height, width = input_size[1:]
    resized = sum(size != (width, height) for size in map(tuple, sizes))
    if not resized:
        return None
    return (f"note: {resized} image(s) not {width}x{height}: the perturbation is computed at "
            f"{width}x{height} and resized to each image")
