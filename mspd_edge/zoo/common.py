"""Pieces shared by the zoo architectures (the normalisation constants are in :mod:`.info`)."""
import torch
import torch.nn as nn


class Normalize(nn.Module):
    """``(x - mean) / std`` inside the model; not part of the state dict (as in RobustBench)."""

    def __init__(self, mean, std, channels=3):
        super().__init__()
        mean = torch.zeros(channels) if mean is None else torch.tensor(mean, dtype=torch.float32)
        std = torch.ones(channels) if std is None else torch.tensor(std, dtype=torch.float32)
        self.register_buffer("mean", mean.view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", std.view(1, -1, 1, 1), persistent=False)

    def forward(self, x):
        return (x - self.mean) / self.std
