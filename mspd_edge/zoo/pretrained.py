"""Where each RobustBench checkpoint is published: the download table, apart from the architectures.

Read from RobustBench's model zoo at commit 78fcc9e (2025): ``gdrive_id`` from the id's entry in
``robustbench/model_zoo/cifar10.py`` / ``imagenet.py``; ``Tian2022Deeper_DeiT-B`` has no Drive id
there (RobustBench builds it with timm), its file is the GitHub release asset named in
``robustbench/model_zoo/architectures/deit.py``. Data only: nothing is fetched at import.
RobustBench publishes no checksums; ``mspd-edge models pull`` records a sha256 at the first
download (:mod:`.checksums`).
"""
from dataclasses import dataclass

DRIVE_URL = "https://drive.google.com/uc?id={}"


@dataclass(frozen=True)
class Published:
    """One checkpoint's published location: a Google Drive file id or a plain URL."""

    listed_in: str                 # the RobustBench file that names it
    gdrive_id: str | None = None
    url: str | None = None

    @property
    def location(self):
        """The URL the checkpoint is downloaded from."""
        return self.url or DRIVE_URL.format(self.gdrive_id)


_CIFAR10 = "robustbench/model_zoo/cifar10.py"
_IMAGENET = "robustbench/model_zoo/imagenet.py"

PUBLISHED = {
    "Gowal2021Improving_R18_ddpm_100m": Published(_CIFAR10, gdrive_id="1-0EuCJashqSXEkkd1DOzFA4tH8KL2kim"),
    "Bartoldson2024Adversarial_WRN-94-16": Published(_CIFAR10, gdrive_id="1g6o9H1b6vjoBi1USdCBt64C8B8LPiioX"),
    "Wong2020Fast": Published(_CIFAR10, gdrive_id="1Re--_lf3jCEw9bnQqGkjw3J7v2tSZKrv"),
    "Addepalli2022Efficient_RN18": Published(_CIFAR10, gdrive_id="1m5vhdzIUUKhDbsZdOG9z76Eyp6f4xe_f"),
    "Hendrycks2020AugMix_ResNeXt": Published(_CIFAR10, gdrive_id="1uGP3nZbL3LC160kOsxwkkt6tDd4qbZT1"),
    "Singh2023Revisiting_ViT-S-ConvStem": Published(_IMAGENET, gdrive_id="1-1sUYXnj6bDXacIKI3KKqn4rlkmL-ZI2"),
    "Tian2022Deeper_DeiT-B": Published(
        "robustbench/model_zoo/architectures/deit.py",
        url="https://github.com/RobustBench/robustbench/releases/download/v1.1.1-test/tian2022deeper-deit-b.pth"),
}
