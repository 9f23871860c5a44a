"""Shared fixtures: single-threaded torch (faster for tiny models on 2 cores), digits."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def digits():
    from robustbench_gan.registry import DATASETS

    return DATASETS.create("digits", seed=0)
