"""Generator families (one per file), the training loop, metrics and sample grids.

Importing this package registers the built-in generators with ``GENERATORS``:
gan, dcgan, cdcgan, acgan, progan, biggan, cyclegan, stackgan, stargan, and the
class_means baseline.
"""

from ..contract.configs import GanTrainConfig
from . import acgan, baseline, biggan, cdcgan, cyclegan, dcgan, gan, progan, stackgan, stargan
from .base import GAN
from .grid import save_sample_grid
from .metrics import frechet_distance, gan_metrics
from .train import GanHistory, train_gan

__all__ = [
    "GAN",
    "GanHistory",
    "GanTrainConfig",
    "acgan",
    "baseline",
    "biggan",
    "cdcgan",
    "cyclegan",
    "dcgan",
    "frechet_distance",
    "gan",
    "gan_metrics",
    "progan",
    "save_sample_grid",
    "stackgan",
    "stargan",
    "train_gan",
]
