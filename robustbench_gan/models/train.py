"""The classifier training loop: seeded, with a pluggable objective (e.g. a training defense)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..contract.configs import TrainConfig
from ..utils import batch_slices, seed_everything, torch_generator
from .objective import TrainingObjective


@dataclass
class TrainHistory:
    epoch_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(),
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
        )
    return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def train_classifier(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    config: TrainConfig,
    seed: int,
    device: torch.device | str = "cpu",
    objective: TrainingObjective | None = None,
    progress: bool = True,
    desc: str = "train",
    amp: bool = False,
) -> TrainHistory:
    """Train ``model`` in place on (x, y) with ``objective`` (a training defense, or standard
    training if None).

    The same seed gives the same weights: initialisation is the caller's, the
    shuffling stream is private to this loop, and a cosine schedule decays the
    learning rate to zero over ``config.epochs``. ``amp`` runs the forward passes
    under bfloat16 autocast. On CUDA, batches are copied from pinned memory without
    blocking and images and weights use the channels-last layout.
    """
    seed_everything(seed)
    objective = objective if objective is not None else TrainingObjective()
    device = torch.device(device)
    on_cuda = device.type == "cuda"
    layout = torch.channels_last if on_cuda else torch.contiguous_format
    model.to(device, memory_format=layout).train()
    optimizer = make_optimizer(model, config)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    rng = torch_generator(seed)
    history = TrainHistory()
    start = time.perf_counter()
    epochs = tqdm(range(config.epochs), desc=desc, leave=False, disable=not progress, unit="epoch")
    for epoch in epochs:
        objective.start_epoch(epoch, config.epochs)
        order = torch.randperm(len(x), generator=rng)
        total, count = 0.0, 0
        for batch in batch_slices(len(x), config.batch_size):
            index = order[batch]
            xb, yb = objective.batch(x[index], y[index], rng)
            if on_cuda:
                xb, yb = xb.pin_memory(), yb.pin_memory()
            xb = xb.to(device, non_blocking=True, memory_format=layout)
            yb = yb.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                loss = objective.loss(model, xb, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(index)
            count += len(index)
        scheduler.step()
        history.epoch_loss.append(total / count)
        epochs.set_postfix(loss=f"{history.epoch_loss[-1]:.3f}")
    history.seconds = time.perf_counter() - start
    model.eval()
    return history
