"""What a defense is, for the runner.

Two kinds:

* ``TrainingDefense`` changes how a classifier is trained: ``batch`` may change a
  training batch (add generated samples), ``loss`` gives the objective for it. It is a
  :class:`~robustbench_gan.models.objective.TrainingObjective`, the hooks the training
  loop calls; the undefended model is trained with that base class itself: the batch
  as is and cross-entropy.
* ``ModelDefense`` builds an inference-time model from trained ones (an
  ensemble of members, a purifier around a classifier).

The runner reads the class-level capabilities below (``kind``, ``needs_generator``,
``combines_members``, ...) instead of defense names, so a third-party defense gets the
same treatment as a built-in one by setting them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from torch import nn

from ..models.objective import TrainingObjective


class Defense:
    """Base of all defenses; ``kind`` tells the runner how to apply it.

    Seeds: the runner passes the suite's seed as ``seed`` to every defense that accepts
    it, so a defense that draws random numbers (random starts, restarts, generator
    weights) takes ``seed: int = 0`` as a keyword and draws only from streams seeded
    with it.
    """

    kind: ClassVar[str] = ""
    #: the runner passes the suite's generator as ``generator``
    needs_generator: ClassVar[bool] = False
    #: the runner passes pre-trained classifiers as ``static_models``
    needs_static_models: ClassVar[bool] = False


class TrainingDefense(Defense, TrainingObjective):
    """Standard training: the batch unchanged, cross-entropy on it (see TrainingObjective)."""

    kind: ClassVar[str] = "training"


class ModelDefense(Defense):
    """Builds an inference-time model out of trained members."""

    kind: ClassVar[str] = "model"
    min_members: ClassVar[int] = 1
    #: the built model combines several members' outputs (an ensemble): the report then
    #: shows the ensemble-effects table for it (the ensemble against its members). A
    #: third-party ensemble sets it too.
    combines_members: ClassVar[bool] = False
    #: the built model purifies its input before classifying it (Defense-GAN): the
    #: report then shows the purification section for it.
    purifier: ClassVar[bool] = False

    @classmethod
    def variant(cls, params: Mapping[str, Any]) -> str:
        """A short label of how the defense configured with ``params`` is evaluated
        (e.g. the gradient an attacker sees); ``""`` when there is only one way."""
        return ""

    def build(self, members: Sequence[nn.Module]) -> nn.Module:
        """The inference-time model made of the trained ``members``."""
        raise NotImplementedError
