"""Checking someone else's adversarial examples against a model, as RobustBench takes them.

An external evaluation hands over a tensor of adversarial images for the first n test
points. ``verify_adversarial`` checks each image (finite, in [0, 1], in the eps-ball around
its clean image), never clips or fixes anything, and scores the model: accuracy on the
valid adversarial images, and robust accuracy where an invalid image counts as its clean
one (the attacker gets no credit for it). ``load_adversarial`` reads such a tensor from a
``.pt`` file without unpickling code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from .contract.norms import Norm
from .errors import UserError
from .safe_load import load_tensors
from .utils import predict

LINF_TOLERANCE = 1e-6  # absolute, on the [0, 1] scale
L2_TOLERANCE = 1e-6  # relative to eps
KINDS = ("nonfinite", "out_of_range", "outside_ball")


@dataclass(frozen=True)
class VerifyReport:
    """Per-image checks (boolean masks of length n) and the accuracies they give.

    ``nonfinite``: a NaN or infinite value; ``out_of_range``: a value outside [0, 1];
    ``outside_ball``: ``|adv - x|`` over eps (Linf: eps + 1e-6; L2: eps * (1 + 1e-6)).
    An image may break several rules. ``distance``: its norm distance to the clean image.
    ``robust``: per image, the adversarial prediction is right (valid images) or the clean
    one is (invalid images).
    """

    n: int
    eps: float
    norm: str
    nonfinite: Tensor
    out_of_range: Tensor
    outside_ball: Tensor
    valid: Tensor
    distance: Tensor
    clean_correct: Tensor
    adv_correct: Tensor
    robust: Tensor
    clean_acc: float
    robust_acc_valid: float
    robust_acc: float

    def violations(self) -> dict[str, list[int]]:
        """The indices of the images that break each rule."""
        return {kind: _indices(getattr(self, kind)) for kind in KINDS}

    def summary(self) -> str:
        """A few lines: counts of violations, the accuracies."""
        invalid = self.n - int(self.valid.sum())
        lines = [
            f"{self.n} adversarial images checked ({self.norm}, eps {self.eps:g}): "
            f"{self.n - invalid} valid, {invalid} invalid",
        ]
        for kind, indices in self.violations().items():
            if indices:
                shown = ", ".join(str(i) for i in indices[:10])
                more = ", ..." if len(indices) > 10 else ""
                lines.append(f"  {kind.replace('_', ' ')}: {len(indices)} ({shown}{more})")
        finite = self.distance[torch.isfinite(self.distance)]
        if len(finite):
            lines.append(f"  largest {self.norm} distance: {float(finite.max()):.6g}")
        lines.append(
            f"clean accuracy {self.clean_acc:.4f}; robust accuracy {self.robust_acc:.4f} "
            f"(invalid images count as clean); on the valid images only "
            f"{self.robust_acc_valid:.4f}"
        )
        return "\n".join(lines)


def _indices(mask: Tensor) -> list[int]:
    return [int(i) for i in mask.nonzero().flatten()]


def verify_adversarial(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    adv: Tensor,
    *,
    eps: float,
    norm: str = "Linf",
    batch_size: int = 256,
) -> VerifyReport:
    """Check ``adv`` (adversarial images for the first ``len(adv)`` points of ``x``, ``y``)
    and score ``model`` on them; nothing is clipped or changed, ``model`` included (put it
    in eval mode first). What ``check_adversarial`` refuses, or a shape other than ``x``'s,
    is a UserError. Any floating dtype is taken: the rules are checked on the values as
    given, and the model sees them converted to ``x``'s dtype (float16 or float64 images
    for a float32 model, as AutoAttack's checks take any float tensor in [0, 1])."""
    parsed = Norm.parse(norm)
    if parsed is None:
        raise UserError(f"norm {norm!r}: one of {sorted(n.display for n in Norm)}")
    norm_name = parsed.display
    if not eps >= 0:
        raise UserError(f"eps must be a number >= 0, got {eps}")
    adv = check_adversarial(adv)
    n = len(adv)
    if adv.dim() != x.dim() or adv.shape[1:] != x.shape[1:] or not 0 < n <= len(x):
        raise UserError(
            f"adversarial images of shape {tuple(adv.shape)} do not match the test images "
            f"{tuple(x.shape)}: expected (n, {', '.join(str(s) for s in x.shape[1:])}) "
            f"with 1 <= n <= {len(x)}"
        )
    if len(y) < n:
        raise UserError(f"{len(y)} labels for {n} adversarial images")
    x, y = x[:n], y[:n].to(torch.long)

    flat_adv = adv.detach().flatten(1)
    nonfinite = ~torch.isfinite(flat_adv).all(dim=1)
    out_of_range = ((flat_adv < 0) | (flat_adv > 1)).any(dim=1)
    delta = flat_adv.double() - x.detach().flatten(1).double()
    if norm_name == "Linf":
        distance = delta.abs().amax(dim=1)
        outside_ball = distance > eps + LINF_TOLERANCE
    else:
        distance = delta.norm(p=2, dim=1)
        outside_ball = distance > eps * (1 + L2_TOLERANCE)
    outside_ball = outside_ball.cpu()
    nonfinite, out_of_range, distance = nonfinite.cpu(), out_of_range.cpu(), distance.cpu()
    valid = ~(nonfinite | out_of_range | outside_ball)

    clean_pred = predict(model, x, batch_size=batch_size)
    adv_pred = predict(model, adv.to(x.dtype), batch_size=batch_size)  # checked as given
    y = y.cpu()
    clean_correct, adv_correct = clean_pred == y, adv_pred == y
    robust = torch.where(valid, adv_correct, clean_correct)
    n_valid = int(valid.sum())
    return VerifyReport(
        n=n,
        eps=float(eps),
        norm=norm_name,
        nonfinite=nonfinite,
        out_of_range=out_of_range,
        outside_ball=outside_ball,
        valid=valid,
        distance=distance,
        clean_correct=clean_correct,
        adv_correct=adv_correct,
        robust=robust,
        clean_acc=float(clean_correct.float().mean()),
        robust_acc_valid=float(adv_correct[valid].float().mean()) if n_valid else float("nan"),
        robust_acc=float(robust.float().mean()),
    )


def check_adversarial(adv: object) -> Tensor:
    """``adv`` if it is a dense floating-point tensor with a batch dimension and at least one
    image; else a one-line UserError saying what it is (a sparse or nested tensor, integers,
    a 0-d or empty tensor). Nothing is converted here."""
    if not isinstance(adv, Tensor):
        raise UserError(f"adversarial images must be a tensor, got a {type(adv).__name__}")
    if adv.layout != torch.strided or adv.is_nested:
        kind = "nested" if adv.is_nested else str(adv.layout).replace("torch.", "")
        raise UserError(
            f"adversarial images must be a dense tensor, got a {kind} one; save adv.to_dense()"
        )
    if not adv.is_floating_point():
        raise UserError(f"adversarial images must be a floating-point tensor, got {adv.dtype}")
    if adv.dim() == 0 or len(adv) == 0:
        raise UserError(
            f"adversarial images of shape {tuple(adv.shape)}: want (n, C, H, W) with n >= 1"
        )
    return adv


def load_adversarial(path: str | Path) -> Tensor:
    """Adversarial images from a ``.pt`` file (``torch.load`` with ``weights_only=True``): a
    tensor, or a dict holding it under ``"adv"`` or as its only tensor, that passes
    ``check_adversarial``."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no adversarial examples file at {path}")
    data = load_tensors(path)  # torch's warnings (a sparse tensor's check) kept off stderr
    if isinstance(data, dict):
        tensors = {k: v for k, v in data.items() if isinstance(v, Tensor)}
        if isinstance(data.get("adv"), Tensor):
            data = data["adv"]
        elif len(tensors) == 1:
            data = next(iter(tensors.values()))
        else:
            raise UserError(
                f"{path}: a dict with keys {sorted(map(str, data))[:6]}; put the adversarial "
                'images under "adv" (or save the tensor alone)'
            )
    if not isinstance(data, Tensor):
        raise UserError(f"{path}: holds a {type(data).__name__}, not a tensor of images")
    try:
        return check_adversarial(data)
    except UserError as exc:
        raise exc.at(str(path)) from None
