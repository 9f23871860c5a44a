"""Variance-tuned NI-FGSM (VNI-FGSM): NI-FGSM's lookahead gradient, tuned as VMI-FGSM's.

Wang and He, "Enhancing the Transferability of Adversarial Attacks through Variance
Tuning", CVPR 2021, https://arxiv.org/abs/2103.15571.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..registry import ATTACKS
from .ni_fgsm import nesterov_gradient_and_logits
from .vmi_fgsm import VMIFGSM


@ATTACKS.register("vni_fgsm")
class VNIFGSM(VMIFGSM):
    """VMI-FGSM (:class:`~.vmi_fgsm.VMIFGSM`) with the tuned gradient taken at NI-FGSM's
    lookahead point ``x + alpha * decay * g`` (:mod:`.ni_fgsm`).

    As the authors' code and torchattacks: the variance is the mean gradient at neighbours
    drawn around the iterate ``x`` (not the lookahead point) less the lookahead gradient.
    Same arguments and defaults as VMI-FGSM (steps 10, decay 1.0, ``neighbours`` 5, beta 1.5,
    ``keep_first_success`` False). Each step costs one forward pass more than VMI-FGSM's
    (after the first), to record whether the iterate already succeeds.
    """

    def _centre(
        self, model: nn.Module, x_adv: Tensor, y: Tensor, target_class: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        """The gradient at the lookahead point, the logits at ``x_adv``."""
        return nesterov_gradient_and_logits(
            self, model, x_adv, y, target_class, self._eps, at_rest=self._step == 0
        )
