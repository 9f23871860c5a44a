"""Classifier families, one per file; each registers itself in CLASSIFIERS."""

from . import kwta, lenet, madry_cnn, mlp, resnet, small_cnn, thermometer  # noqa: F401  (registration)
from .base import Classifier, Normalize
from .ensemble import Ensemble

__all__ = ["Classifier", "Ensemble", "Normalize"]
