"""Array operations the corruptions share: NumPy and SciPy ports of what the reference scripts
took from OpenCV, scikit-image and ImageMagick.

The reference code (Hendrycks' ``make_cifar_c.py`` and ``make_imagenet_c.py``, the
``imagecorruptions`` package, Mu's MNIST-C ``corruptions.py``) calls ``cv2``, ``skimage`` and
Wand; none of them is a dependency of this project, so their few operations used here are
written out, following the libraries' own arithmetic where it shows in the 8-bit result
(OpenCV's fixed-point bilinear resize, skimage's border modes), as the versions installed
today compute them (OpenCV 5: bicubic resize and affine warps in floating point; OpenCV 3-4,
with which the published data sets were made, rounded those to 1/255 and 1/32 pixel).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy import ndimage

#: OpenCV's fixed-point scale of resize weights (INTER_RESIZE_COEF_BITS = 11)
RESIZE_ONE = 2048


def gaussian(
    x: np.ndarray, sigma: float | Sequence[float], *, mode: str = "nearest", truncate: float = 4.0
) -> np.ndarray:
    """``skimage.filters.gaussian`` of a float image: ``(H, W)``, or ``(H, W, C)`` with the
    channels kept apart (``multichannel=True``)."""
    spatial = tuple(sigma) if isinstance(sigma, Sequence) else (sigma, sigma)
    sigmas = spatial + ((0.0,) if x.ndim == 3 else ())
    return ndimage.gaussian_filter(x, sigmas, mode=mode, truncate=truncate)


def gaussian_kernel_1d(size: int, sigma: float) -> np.ndarray:
    """``cv2.getGaussianKernel(size, sigma)``."""
    t = np.arange(size) - (size - 1) / 2
    k = np.exp(-(t**2) / (2 * sigma**2))
    return k / k.sum()


def disk(radius: float, alias_blur: float) -> np.ndarray:
    """The reference's defocus kernel: an aliased disk of ``radius`` on a grid of at least
    17x17, normalised, then anti-aliased by a 3x3 (radius > 8: 5x5) Gaussian of sigma
    ``alias_blur`` with OpenCV's default border (reflect-101, SciPy's ``mirror``)."""
    if radius <= 8:
        grid, size = np.arange(-8, 9), 3
    else:
        grid, size = np.arange(-radius, radius + 1), 5
    xs, ys = np.meshgrid(grid, grid)
    aliased = ((xs**2 + ys**2) <= radius**2).astype(np.float64)
    aliased /= aliased.sum()
    k = gaussian_kernel_1d(size, alias_blur)
    out = ndimage.correlate1d(aliased, k, axis=0, mode="mirror")
    return ndimage.correlate1d(out, k, axis=1, mode="mirror").astype(np.float32)


def per_channel(x: np.ndarray, op: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``op`` applied to every channel of ``(H, W, C)``."""
    return np.stack([op(x[:, :, c]) for c in range(x.shape[2])], axis=2)


def luma(rgb: np.ndarray) -> np.ndarray:
    """``(H, W)`` grey of ``(H, W, 3)`` RGB with ITU-R 601 weights (``cv2.COLOR_RGB2GRAY``)."""
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def next_power_of_2(n: int) -> int:
    return 1 if n == 0 else 2 ** (n - 1).bit_length()


def plasma_fractal(mapsize: int, wibbledecay: float, rng: np.random.RandomState) -> np.ndarray:
    """A ``mapsize`` x ``mapsize`` height map in [0, 1] by the diamond-square algorithm, drawn
    as the reference draws it (``mapsize`` a power of two)."""
    if mapsize & (mapsize - 1):
        raise ValueError(f"mapsize must be a power of two, got {mapsize}")
    heights = np.empty((mapsize, mapsize), dtype=np.float64)
    heights[0, 0] = 0
    step = mapsize
    wibble = 100.0

    def wibbled_mean(a: np.ndarray) -> np.ndarray:
        return a / 4 + wibble * rng.uniform(-wibble, wibble, a.shape)

    while step >= 2:
        half = step // 2
        corners = heights[0:mapsize:step, 0:mapsize:step]
        squares = corners + np.roll(corners, shift=-1, axis=0)
        squares += np.roll(squares, shift=-1, axis=1)
        heights[half:mapsize:step, half:mapsize:step] = wibbled_mean(squares)
        dr = heights[half:mapsize:step, half:mapsize:step]
        ul = heights[0:mapsize:step, 0:mapsize:step]
        lt = dr + np.roll(dr, 1, axis=0) + ul + np.roll(ul, -1, axis=1)
        heights[0:mapsize:step, half:mapsize:step] = wibbled_mean(lt)
        tt = dr + np.roll(dr, 1, axis=1) + ul + np.roll(ul, -1, axis=0)
        heights[half:mapsize:step, 0:mapsize:step] = wibbled_mean(tt)
        step //= 2
        wibble /= wibbledecay
    heights -= heights.min()
    return heights / heights.max()


def zoom(x: np.ndarray, factor: float) -> np.ndarray:
    """``scipy.ndimage.zoom(x, (factor, factor[, 1]), order=1)``."""
    return ndimage.zoom(x, (factor, factor) + (1,) * (x.ndim - 2), order=1)


def clipped_zoom_cifar(x: np.ndarray, factor: float) -> np.ndarray:
    """``make_cifar_c.py``'s ``clipped_zoom``: zoom the centre crop and trim it back to the
    image's size around its centre (per axis here; the reference is square)."""
    h, w = x.shape[:2]
    ch, cw = math.ceil(h / factor), math.ceil(w / factor)
    top, left = (h - ch) // 2, (w - cw) // 2
    out = zoom(x[top : top + ch, left : left + cw], factor)
    trim_top, trim_left = (out.shape[0] - h) // 2, (out.shape[1] - w) // 2
    return out[trim_top : trim_top + h, trim_left : trim_left + w]


def clipped_zoom_imagenet(x: np.ndarray, factor: float) -> np.ndarray:
    """``imagecorruptions``' ``clipped_zoom``: the centre crop zoomed, not yet cut back to the
    image's size (its callers cut from the top left, some after further steps)."""
    h, w = x.shape[:2]
    ch, cw = math.ceil(h / float(factor)), math.ceil(w / float(factor))
    top, left = (h - ch) // 2, (w - cw) // 2
    return zoom(x[top : top + ch, left : left + cw], factor)


def _shift(x: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """``x`` moved by (dx, dy) pixels, the edge rows and columns repeated into the gap."""
    out = x
    if dx < 0:
        out = np.roll(out, shift=x.shape[1] + dx, axis=1)
        out[:, dx:] = out[:, dx - 1 : dx]
    elif dx > 0:
        out = np.roll(out, shift=dx, axis=1)
        out[:, :dx] = out[:, dx : dx + 1]
    if dy < 0:
        out = np.roll(out, shift=x.shape[0] + dy, axis=0)
        out[dy:, :] = out[dy - 1 : dy, :]
    elif dy > 0:
        out = np.roll(out, shift=dy, axis=0)
        out[:dy, :] = out[dy : dy + 1, :]
    return out


def motion_blur(x: np.ndarray, radius: int, sigma: float, angle: float) -> np.ndarray:
    """ImageMagick's ``MotionBlurImage`` as ``imagecorruptions`` ports it: the mean of the
    image moved along ``angle`` (degrees) by 0..2*radius pixels, weighted by a one-sided
    Gaussian of ``sigma``; moves that leave the image end the sum."""
    width = 2 * radius + 1
    kernel = np.exp(-(np.arange(width) ** 2) / (2 * sigma**2)) / (math.sqrt(2 * math.pi) * sigma)
    kernel /= kernel.sum()
    point = (width * math.sin(math.radians(angle)), width * math.cos(math.radians(angle)))
    hypot = math.hypot(*point)
    blurred = np.zeros(x.shape, dtype=np.float64)
    for i in range(width):
        dy = -math.ceil(((i * point[0]) / hypot) - 0.5)
        dx = -math.ceil(((i * point[1]) / hypot) - 0.5)
        if abs(dy) >= x.shape[0] or abs(dx) >= x.shape[1]:
            break
        blurred = blurred + kernel[i] * _shift(x, dx, dy)
    return blurred


def _linear_taps(size: int, source: int, scale: float) -> tuple[np.ndarray, ...]:
    f = ((np.arange(size) + 0.5) * scale - 0.5).astype(np.float32)
    s = np.floor(f).astype(np.int64)
    f = f - s
    f[s < 0], s[s < 0] = 0, 0
    last = s >= source - 1
    f[last], s[last] = 0, source - 1
    weights = [np.rint((1 - f) * RESIZE_ONE), np.rint(f * RESIZE_ONE)]
    return s, np.minimum(s + 1, source - 1), *[w.astype(np.int64) for w in weights]


def _cubic_taps(index: np.ndarray, source: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    f = ((index + 0.5) * scale - 0.5).astype(np.float32)
    s = np.floor(f)
    t = (f - s).astype(np.float64)
    a = -0.75
    c0 = ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a
    c1 = ((a + 2) * t - (a + 3)) * t * t + 1
    c2 = ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1
    taps = np.clip(s.astype(np.int64)[:, None] + np.arange(-1, 3), 0, source - 1)
    return taps, np.stack([c0, c1, c2, 1 - c0 - c1 - c2], axis=1)


def _vertical_linear(
    rows: tuple[np.ndarray, np.ndarray], weights: tuple[np.ndarray, ...]
) -> np.ndarray:
    """OpenCV's vector path of the vertical linear pass to 8 bits: the rows' values cut to
    16 bits, multiplied keeping the high half, summed and rounded by 2 bits."""
    (a, b), (wa, wb) = rows, weights
    a16, b16 = np.clip(a >> 4, -32768, 32767), np.clip(b >> 4, -32768, 32767)
    out = (((wa * a16) >> 16) + ((wb * b16) >> 16) + 2) >> 2
    return np.clip(out, 0, 255).astype(np.uint8)


def resize_linear(image: np.ndarray, factor: float) -> np.ndarray:
    """``cv2.resize(image, (0, 0), fx=factor, fy=factor)`` of a uint8 ``(H, W, C)`` image
    (bilinear, OpenCV's 11-bit fixed-point weights)."""
    h, w = image.shape[:2]
    rows = _linear_taps(int(np.rint(h * factor)), h, 1 / factor)
    cols = _linear_taps(int(np.rint(w * factor)), w, 1 / factor)
    src = image.astype(np.int64)
    across = src[:, cols[0]] * cols[2][:, None] + src[:, cols[1]] * cols[3][:, None]
    pair = (across[rows[0]], across[rows[1]])
    return _vertical_linear(pair, (rows[2][:, None, None], rows[3][:, None, None]))


def resize_cubic_window(
    image: np.ndarray, size: tuple[int, int], top: int, left: int, height: int, width: int
) -> np.ndarray:
    """The window ``[top:top+height, left:left+width]`` of ``cv2.resize(image, size[::-1],
    interpolation=cv2.INTER_CUBIC)`` for a uint8 ``(H, W, C)`` image, computed alone.

    Bicubic with a = -0.75 and replicated borders, in floating point as OpenCV 5 computes it
    (OpenCV 3 and 4 used 11-bit fixed-point weights: at most 1/255 apart)."""
    h, w = image.shape[:2]
    row_taps, row_w = _cubic_taps(np.arange(top, top + height), h, h / size[0])
    col_taps, col_w = _cubic_taps(np.arange(left, left + width), w, w / size[1])
    across = np.einsum("hwkc,wk->hwc", image.astype(np.float64)[:, col_taps], col_w)
    out = np.einsum("hkwc,hk->hwc", across[row_taps], row_w)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def affine_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """``cv2.getAffineTransform``: the 2x3 matrix taking three points ``src`` to ``dst``."""
    a = np.zeros((6, 6))
    a[0::2, 0:2], a[0::2, 2] = src, 1
    a[1::2, 3:5], a[1::2, 5] = src, 1
    return np.linalg.solve(a, np.asarray(dst, dtype=np.float64).reshape(6)).reshape(2, 3)


def warp_affine(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``cv2.warpAffine(image, matrix, (W, H), borderMode=cv2.BORDER_REFLECT_101)`` of a float
    ``(H, W, C)`` image: each output pixel is the bilinear sample of the input at the inverse
    map of its coordinates, the input reflected about its edge pixels (SciPy's ``mirror``).
    Coordinates are exact, as OpenCV 5 computes them (OpenCV 3 and 4 snap them to 1/32 px)."""
    h, w = image.shape[:2]
    m = np.asarray(matrix, dtype=np.float64)
    inverse = np.linalg.inv(np.vstack([m, [0.0, 0.0, 1.0]]))[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    sx = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
    sy = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
    return per_channel(
        image, lambda c: ndimage.map_coordinates(c, [sy, sx], order=1, mode="mirror")
    )
