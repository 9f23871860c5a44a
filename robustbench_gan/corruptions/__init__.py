"""Common corruptions: the base class and one module per group, each registered in
``CORRUPTIONS``; the set for colour images and the set for grey digits.

Called as ``CORRUPTIONS.create(name)(images, severity, seed)`` with images ``(N, C, H, W)`` in
[0, 1] and severity 1..5 (see :mod:`.base`). Two sets, by the channels of the images:

- colour (3 channels): the 15 corruptions of Hendrycks and Dietterich (ICLR 2019,
  https://arxiv.org/abs/1903.12261) behind CIFAR-10-C and ImageNet-C, at their five
  severities, with CIFAR-10-C's constants for images up to 64 px and ImageNet-C's above;
- grey (1 channel): the 15 of MNIST-C (Mu and Gilmer 2019, https://arxiv.org/abs/1906.02337),
  registered as ``mnist_c_<name>``; MNIST-C's one strength is severity 3 (see :mod:`.mnist_c`).

Every corruption runs on either kind of image (a grey image goes through the Hendrycks
corruptions as ``imagecorruptions`` treats one; frost overlays the frost's grey, snow whitens
the grey itself). The sets only say which corruptions a benchmark of such images reports:
frost and snow are left out of the grey set, which is MNIST-C's own list.

CORRUPTIONS imports every public module of this package when first used (see
:mod:`robustbench_gan.registry`), so a new corruption module needs no import here. It is not
yet in ``REGISTRIES``: ``rbg list`` and the check that the core names no plugin
(tests/test_core_names_no_plugin.py, which would then look for words like ``contrast`` and
``fog`` in the core's strings) take it in with the evaluation kind that uses it.
"""

from .base import SEVERITIES, Corruption, image_rng

#: the 15 corruptions of CIFAR-10-C and ImageNet-C, in the paper's order
HENDRYCKS = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "glass_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "frost",
    "fog",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
)
#: the 15 corruptions of MNIST-C, in its order
MNIST_C = tuple(
    f"mnist_c_{name}"
    for name in (
        "shot_noise",
        "impulse_noise",
        "glass_blur",
        "motion_blur",
        "shear",
        "scale",
        "rotate",
        "brightness",
        "translate",
        "stripe",
        "fog",
        "spatter",
        "dotted_line",
        "zigzag",
        "canny_edges",
    )
)


def corruption_set(channels: int) -> list[str]:
    """The corruptions a benchmark of images with ``channels`` channels runs: 3, the 15 of
    Hendrycks and Dietterich; 1, the 15 of MNIST-C."""
    if channels == 3:
        return list(HENDRYCKS)
    if channels == 1:
        return list(MNIST_C)
    raise ValueError(f"channels must be 1 or 3, got {channels!r}")


__all__ = ["HENDRYCKS", "MNIST_C", "SEVERITIES", "Corruption", "corruption_set", "image_rng"]
