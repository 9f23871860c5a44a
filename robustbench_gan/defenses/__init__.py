"""Defenses: training-time objectives and inference-time model builders."""

from . import ensemble, fgsm_at, gan_augment  # noqa: F401  (registration)
from .base import Defense, ModelDefense, TrainingDefense

__all__ = ["Defense", "ModelDefense", "TrainingDefense"]
