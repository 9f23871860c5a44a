"""Kinds of evaluation, one module each (training, attacks, transfer, ...); see base.py."""

from .base import Evaluation, Section
from .registry import EVALUATIONS

__all__ = ["EVALUATIONS", "Evaluation", "Section"]
