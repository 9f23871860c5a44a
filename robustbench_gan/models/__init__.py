"""Classifier families, one per file; each registers itself in CLASSIFIERS."""

from . import lenet, madry_cnn, mlp, resnet, small_cnn  # noqa: F401  (registration)
from .base import Classifier, Normalize
from .ensemble import Ensemble

__all__ = ["Classifier", "Ensemble", "Normalize"]
