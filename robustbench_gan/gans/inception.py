"""Inception-v3 pool features for an Inception FID, from weights the user has on disk.

The network is torchvision's ``inception_v3`` (Szegedy et al., "Rethinking the Inception
Architecture for Computer Vision", CVPR 2016), loaded from a local state dict such as
torchvision's ``inception_v3_google-0cc3c7bd.pth``; nothing is ever downloaded. Images in
[0, 1] are resized to 299 x 299 (bilinear), a single channel is repeated to three, and
they are normalised with the ImageNet mean and std as torchvision's weights expect (the
net is built with ``transform_input=True``, as torchvision builds it for those weights).
The features are the 2048-d average pool before the classifier.

These weights are not the TensorFlow graph of the original FID (Heusel et al. 2017), so
the numbers compare with each other, not exactly with published Inception FIDs.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..errors import UserError
from ..safe_load import UnreadableFile, load_tensors
from ..utils import batch_slices

INPUT_SIDE = 299
FEATURE_DIM = 2048
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def load_inception(path: str | Path) -> nn.Module:
    """torchvision's Inception-v3 with the state dict at ``path`` and its classifier
    replaced by the identity (so it returns pool features), in eval mode, without grads."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no Inception weights file at {path}")
    try:
        state = load_tensors(path)
    except UnreadableFile as exc:
        raise UserError(f"cannot read Inception weights {path}: {exc.reason}") from None
    from torchvision.models import inception_v3  # here: importing torchvision takes a second

    net = inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=True)
    try:
        net.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        reason = str(exc).splitlines()[0]
        raise UserError(
            f"{path} is not a state dict of torchvision's inception_v3: {reason}"
        ) from None
    net.fc = nn.Identity()
    return net.eval().requires_grad_(False)


class InceptionFeatures:
    """``features = InceptionFeatures(path)(images)``: (N, 2048) float32 on the CPU for
    images (N, 1 or 3, H, W) in [0, 1], computed on ``device`` in batches."""

    def __init__(
        self, path: str | Path, *, device: str | torch.device = "cpu", batch_size: int = 64
    ) -> None:
        self.path = Path(path)
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        self.net = load_inception(self.path).to(self.device)
        self.mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)

    def prepare(self, x: Tensor) -> Tensor:
        """Images in [0, 1] as the net takes them: 3 x 299 x 299, ImageNet-normalised."""
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"expected images (N, 1 or 3, H, W), got {tuple(x.shape)}")
        x = x.to(self.device, torch.float32).expand(-1, 3, -1, -1)
        x = F.interpolate(x, size=(INPUT_SIDE, INPUT_SIDE), mode="bilinear", align_corners=False)
        return (x - self.mean) / self.std

    @torch.no_grad()
    def __call__(self, x: Tensor) -> Tensor:
        out = [self.net(self.prepare(x[s])).cpu() for s in batch_slices(len(x), self.batch_size)]
        return torch.cat(out) if out else torch.empty(0, FEATURE_DIM)
