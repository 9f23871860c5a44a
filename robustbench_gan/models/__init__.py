"""Classifier families, one per file; each registers itself in CLASSIFIERS."""

from . import (  # noqa: F401  (registration)
    kwta,
    lenet,
    madry_cnn,
    mlp,
    resnet,
    small_cnn,
    thermometer,
    vgg,
    vit,
)
from .base import Classifier, Normalize
from .ensemble import Ensemble

__all__ = ["Classifier", "Ensemble", "Normalize"]
