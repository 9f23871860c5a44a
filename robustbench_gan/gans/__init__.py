"""Generator families (one per file), the training loop, metrics and sample grids.

Importing this package registers the built-in generators with ``GENERATORS``.
"""

from . import cdcgan, dcgan
from .base import GAN
from .grid import save_sample_grid
from .metrics import frechet_distance, gan_metrics
from .train import GanHistory, train_gan

__all__ = [
    "GAN",
    "GanHistory",
    "cdcgan",
    "dcgan",
    "frechet_distance",
    "gan_metrics",
    "save_sample_grid",
    "train_gan",
]
