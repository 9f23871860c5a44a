"""Defenses: training-time objectives and inference-time model builders.

DEFENSES imports every public module of this package when first used (see
:mod:`robustbench_gan.registry`), so a new defense module needs no import here.
"""

from .adversarial import AdversarialTraining
from .base import Defense, ModelDefense, TrainingDefense

__all__ = ["AdversarialTraining", "Defense", "ModelDefense", "TrainingDefense"]
