"""Defenses: training-time objectives and inference-time model builders."""

from . import (  # noqa: F401  (registration)
    adversarial,
    defense_gan,
    ensemble,
    ensemble_at,
    fgsm_at,
    gan_adversarial,
    gan_augment,
    trades,
)
from .adversarial import AdversarialTraining
from .base import Defense, ModelDefense, TrainingDefense

__all__ = ["AdversarialTraining", "Defense", "ModelDefense", "TrainingDefense"]
