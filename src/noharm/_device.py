"""Where torch computations run: ``device="auto" | "cpu" | "cuda" | "cuda:N"``."""
from __future__ import annotations

import torch

from .errors import ConfigError


def resolve_device(device: str | torch.device | None = "cpu") -> torch.device:
    """The torch device for ``device``; ``"auto"`` takes the first GPU when there is one.

    Raises
    ------
    ConfigError
        For an unknown name, or a CUDA device this machine does not have.
    """
    if isinstance(device, torch.device):
        device = str(device)
    name = "cpu" if device is None else str(device).strip().lower()
    if name == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r}: this machine has no CUDA GPU (or torch was "
                              "built without CUDA); use --device cpu or --device auto.")
        index = 0 if name == "cuda" else name.split(":", 1)[1]
        if not str(index).isdigit() or int(index) >= torch.cuda.device_count():
            raise ConfigError(f"device {device!r}: this machine has "
                              f"{torch.cuda.device_count()} CUDA device(s) (cuda:0 ...).")
        return torch.device(f"cuda:{int(index)}")
    raise ConfigError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N.")
