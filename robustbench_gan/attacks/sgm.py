"""Skip Gradient Method (SGM): a residual surrogate's gradient, its residual branches decayed.

Wu, Wang, Xia, Bailey and Ma, "Skip Connections Matter: On the Transferability of
Adversarial Examples Generated with ResNets", ICLR 2020, https://arxiv.org/abs/2002.05990.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated, ClassVar

from torch import Tensor, nn

from ..bounds import Count, NonNegative, Positive, Range, Seed
from ..errors import UserError
from ..registry import ATTACKS
from .mifgsm import MIFGSM

#: what a residual block declares: the names of its submodules whose outputs are residual
#: branches, added to its skip connection (models/resnet.py's BasicBlock: ``("bn2",)``)
BRANCH_ENDS = "residual_branch_ends"


def residual_branch_ends(model: nn.Module) -> list[nn.Module]:
    """The last module of every residual branch in ``model``, as its blocks declare them."""
    ends = []
    for module in model.modules():
        for name in getattr(module, BRANCH_ENDS, ()):
            ends.append(module.get_submodule(name))
    return ends


@contextlib.contextmanager
def skip_gradients(model: nn.Module, gamma: float) -> Iterator[None]:
    """For the duration, the gradient flowing back into every residual branch of ``model`` is
    multiplied by ``gamma``, while its skip connection's passes unchanged: hooks installed
    on entry and removed on exit, even if the body raised. UserError on a model without a
    residual block."""
    ends = residual_branch_ends(model)
    if not ends:
        raise UserError(
            f"sgm needs a residual surrogate, and {type(model).__name__} has no residual "
            f"block (a module declaring `{BRANCH_ENDS}`, as the resnet18's blocks do)"
        )

    def decay(module: nn.Module, inputs: object, output: Tensor) -> None:
        if output.requires_grad:  # the branch's output, before the sum with the skip
            output.register_hook(lambda grad: grad * gamma)

    handles = [end.register_forward_hook(decay) for end in ends]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@ATTACKS.register("sgm")
class SGM(MIFGSM):
    """Iterated sign steps (optionally with momentum) along a residual surrogate's gradient
    whose residual branches are decayed by ``gamma``.

    A residual block ``z' = z + f(z)`` passes back ``1 + gamma * df/dz`` instead of
    ``1 + df/dz``: more of the gradient takes the skip connections. The steps are MI-FGSM's (:class:`~.mifgsm.MIFGSM`); with ``decay = 0``, the default,
    plain iterated FGSM from the clean image (the authors' code runs PGD without a random
    start, or momentum if asked). ``gamma = 1`` is the plain gradient.

    The residual blocks are found by declaration, not by class: every module of the
    surrogate that lists ``residual_branch_ends`` (the names of the submodules ending its
    residual branches; models/resnet.py's BasicBlock names ``bn2``); in an ensemble, the
    residual members' blocks. The gradient hooks live only while a gradient is computed. A
    surrogate without a residual block is refused (UserError).

    The authors' code hooks the ReLUs instead (on torchvision's ResNets): the one inside the
    branch decays it by ``gamma`` relative to the skip, as here; the one after the sum and a
    division by the batch's standard deviation scale a block's whole gradient, which leaves
    its sign unchanged. But its naming filter skips the first block of every stage; here
    every declared block is decayed, as in the paper's formulation.

    Args:
        gamma: the residual gradient's decay (paper: 0.2 for ResNet-18/34, 0.5 for deeper).
        steps: iterations (10).
        decay: momentum ``mu``; default 0.0 (no momentum); 1.0 is MI-FGSM with SGM.
        rel_stepsize: step ``alpha`` as a fraction of eps; default ``1 / steps``.
        keep_first_success: default False, the last iterate of every image (a transfer
            attack's); True keeps per image the first iterate that fools the model.

    Also takes ``targeted``, ``seed``, ``batch_size``; it uses no randomness.
    """

    #: it runs only on a surrogate with residual blocks (see :func:`residual_branch_ends`)
    needs_residual_blocks: ClassVar[bool] = True

    def __init__(
        self,
        *,
        gamma: Annotated[float, Range(0, 1, open_low=True)] = 0.2,
        steps: Count = 10,
        decay: NonNegative = 0.0,
        rel_stepsize: Positive | None = None,
        keep_first_success: bool = False,
        targeted: bool = False,
        seed: Seed = 0,
        batch_size: Count = 256,
    ) -> None:
        super().__init__(
            steps=steps,
            decay=decay,
            rel_stepsize=rel_stepsize,
            keep_first_success=keep_first_success,
            targeted=targeted,
            seed=seed,
            batch_size=batch_size,
        )
        self.gamma = float(gamma)

    def gradient_and_logits(
        self, model: nn.Module, x_adv: Tensor, y: Tensor, target_class: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        """The gradient with the residual branches decayed, and the logits at ``x_adv``."""
        with skip_gradients(model, self.gamma):
            return super().gradient_and_logits(model, x_adv, y, target_class)
