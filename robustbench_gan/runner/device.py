"""Choosing the device: ``auto`` takes CUDA when present, else the CPU."""

from __future__ import annotations

import torch

from ..errors import UserError
from .machine import cpu_capability

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(choice: str) -> torch.device:
    if choice not in DEVICE_CHOICES and not choice.startswith("cuda:"):
        raise UserError(f"--device must be one of {', '.join(DEVICE_CHOICES)}, got {choice!r}")
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    elif choice.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {choice}: CUDA is not available on this machine")
    device = torch.device(choice)
    if device.type == "cuda":
        # fastest convolution algorithms for fixed shapes; GPU numbers are then not bit-exact
        torch.backends.cudnn.benchmark = True
    return device


def set_cpu_threads(threads: int) -> None:
    """Fix torch's intra-op threads: CPU results are bit-identical only for one thread count."""
    if threads < 1:
        raise UserError(f"--threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)


def describe_device(device: torch.device, channels_last: bool = False) -> str:
    """'cpu (N threads, AVX2)' (torch's CPU kernel path last; ', channels-last' after it
    where the models were evaluated in that layout) or 'cuda:<name>' for the leaderboard's
    device column."""
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    threads = torch.get_num_threads()
    layout = ", channels-last" if channels_last else ""
    return f"cpu ({threads} thread{'s' if threads > 1 else ''}, {cpu_capability()}{layout})"
