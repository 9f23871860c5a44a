"""Kinds of evaluation, one module each (training, attacks, transfer, ...); the protocol they
implement and their registry live in the contract (contract/kind.py, contract/kinds.py)."""

from ..contract.kind import Evaluation, Section
from ..contract.kinds import EVALUATIONS

__all__ = ["EVALUATIONS", "Evaluation", "Section"]
